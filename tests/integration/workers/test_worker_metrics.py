"""A worker's Prometheus exporter, scraped over loopback HTTP: task, job and fetch counts after
real tasks ran through Celery (signals included), queue lengths from the real Redis and the
oldest waiting job's age from the real Postgres."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, update
from support.broker import emptied
from support.builders import add_contract, add_metadata, add_token
from support.processes import free_port
from support.worker_exporter import scrape, start, value

import workers.signals  # noqa: F401 - connects the task signals, as `celery -A workers` does
from devnet import chain_db
from devnet.builders import nft_collection
from devnet.scenario import Scenario
from devnet.server import Devnet
from shared.config import Settings
from shared.db import session_scope
from shared.models import ImageJob, Job, JobStatus
from shared.queues import (
    MONITOR_CHAIN_TASK,
    PROCESS_CONTRACT_TASK,
    PROCESS_TOKENS_TASK,
    WORKER_QUEUES,
)
from shared.reads.queue_lengths import queue_keys
from workers import metrics, runtime
from workers.celery_app import create_celery_app


@pytest.fixture
def exporter(settings: Settings) -> Iterator[metrics.MetricsExporter]:
    running = start(settings)
    yield running
    running.stop()


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    keys = [key for queue in WORKER_QUEUES for key in queue_keys(queue)]
    with emptied(redis_url, *keys) as client:
        yield client


def test_queue_lengths_add_up_kombus_priority_lists(
    exporter: metrics.MetricsExporter, broker: redis.Redis
) -> None:
    broker.lpush("tokens", "a", "b", "c")
    broker.lpush("tokens\x06\x166", "d", "e")
    broker.lpush("contracts", "f")
    samples = scrape(exporter)
    assert value(samples, "token_metadata_queue_length", queue="tokens") == 5
    assert value(samples, "token_metadata_queue_length", queue="contracts") == 1
    assert value(samples, "token_metadata_queue_length", queue="chain") == 0
    assert {
        queue
        for (name, labels) in samples
        if name == "token_metadata_queue_length"
        for _key, queue in labels
    } == set(WORKER_QUEUES)


def test_oldest_pending_job_age_counts_only_work_waiting_for_a_worker(
    exporter: metrics.MetricsExporter, sessions
) -> None:
    with session_scope(sessions) as session:
        waiting = add_contract(session, job_status=JobStatus.QUEUED).id
        running = add_contract(session, job_status=JobStatus.QUEUED).id
        not_due = add_contract(session, job_status=JobStatus.PENDING).id
        ages = {
            waiting: {"updated_at": func.now() - timedelta(seconds=120)},
            # claimed by a live worker, and older: not waiting
            running: {
                "updated_at": func.now() - timedelta(hours=1),
                "locked_until": func.now() + timedelta(seconds=30),
            },
            # a retry due in the future: not waiting yet
            not_due: {
                "updated_at": func.now() - timedelta(hours=2),
                "retry_after": func.now() + timedelta(minutes=5),
            },
        }
        for contract_id, values in ages.items():
            session.execute(update(Job).where(Job.smart_contract_id == contract_id).values(values))
    age = value(scrape(exporter), "token_metadata_oldest_pending_job_age_seconds")
    assert age is not None
    assert 119 <= age < 180


def test_oldest_pending_job_age_covers_image_jobs(
    exporter: metrics.MetricsExporter, sessions
) -> None:
    with session_scope(sessions) as session:
        token = add_token(session, add_contract(session))
        metadata_id = add_metadata(session, token)
        session.add(
            ImageJob(
                metadata_id=metadata_id,
                status=JobStatus.PENDING,
                updated_at=func.now() - timedelta(seconds=300),
            )
        )
    age = value(scrape(exporter), "token_metadata_oldest_pending_job_age_seconds")
    assert age is not None
    assert 299 <= age < 360


def test_no_waiting_job_is_age_zero(exporter: metrics.MetricsExporter) -> None:
    assert value(scrape(exporter), "token_metadata_oldest_pending_job_age_seconds") == 0


def test_an_unreachable_broker_leaves_its_gauge_out_of_the_scrape(settings: Settings) -> None:
    exporter = start(replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        samples = scrape(exporter)
    finally:
        exporter.stop()
    assert not any(name == "token_metadata_queue_length" for name, _labels in samples)
    assert value(samples, "token_metadata_oldest_pending_job_age_seconds") == 0


# --- real tasks -----------------------------------------------------------------------------


def drain(app, broker: redis.Redis, limit: int = 50) -> int:
    """Run every message on the worker queues in-process, as a worker would (signals too)."""
    keys = [key for queue in WORKER_QUEUES for key in queue_keys(queue)]
    for ran in range(limit):
        raw = next((m for key in keys if (m := broker.rpop(key))), None)
        if raw is None:
            return ran
        message = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        app.tasks[message["headers"]["task"]].apply(args=args, kwargs=kwargs)
    raise AssertionError(f"still messages on the queues after {limit} tasks")


SCENARIO = Scenario.build([nft_collection("metered", 3, 2)], chain_tip_height=3)


@pytest.fixture
def chain_url(stacks_api_database_url: str) -> str:
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        chain_db.create_schema(conn)
        chain_db.seed(conn, SCENARIO)
    return stacks_api_database_url


def test_tasks_jobs_and_fetches_are_counted_after_real_tasks_ran(
    settings: Settings, chain_url: str, broker: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Devnet(SCENARIO) as net:
        settings = replace(
            settings,
            stacks_node_rpc_url=net.node_url,
            stacks_api_database_url=chain_url,
            worker_metrics_port=free_port(),
        )
        app = create_celery_app(settings)
        monkeypatch.setattr(runtime, "_runtime", None)  # this test's process runtime
        exporter = start(settings)
        try:
            before = scrape(exporter)
            app.tasks[MONITOR_CHAIN_TASK].apply()  # the history import queues the contract
            assert drain(app, broker) >= 2  # the contract job, then its token batch
            after = scrape(exporter)
        finally:
            exporter.stop()
            built = runtime.get_runtime(app)
            if built.ctx.leases is not None:
                built.ctx.leases.stop()
            built.processor.metadata.fetcher.close()
            built.processor.fetch_pool.shutdown()
            built.redis.close()
            for engine in built.engines:
                engine.dispose()
            app.close()

    def delta(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("token_metadata_tasks_total", task=MONITOR_CHAIN_TASK, outcome="done") == 1
    assert delta("token_metadata_tasks_total", task=PROCESS_CONTRACT_TASK, outcome="done") == 1
    assert delta("token_metadata_jobs_total", task=PROCESS_CONTRACT_TASK, outcome="done") == 1
    assert delta("token_metadata_jobs_total", task=PROCESS_TOKENS_TASK, outcome="done") == 3
    assert delta("token_metadata_task_duration_seconds_count", task=PROCESS_TOKENS_TASK) >= 1
    # The devnet's metadata host is plain http on loopback: neither gateway nor data: URI.
    ok = {"kind": "metadata", "host_class": "http", "outcome": "ok"}
    assert delta("token_metadata_fetch_outcomes_total", **ok) == 3
