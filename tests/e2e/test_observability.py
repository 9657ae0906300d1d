"""The Procfile's worker and flower, really started: JSON log lines with the job's id, the
worker's Prometheus exporter counting a job task, and Flower (behind its login) seeing the
worker and our queues on the Redis broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support.processes import (
    Running,
    free_port,
    process_env,
    procfile_command,
    running,
    wait_until,
)

from shared.config import Settings
from shared.queues import PROCESS_TOKEN_TASK, TOKENS_QUEUE, WORKER_QUEUES
from workers.celery_app import create_celery_app

pytestmark = pytest.mark.e2e
FLOWER_LOGIN = ("ops", "s3cret")
MISSING_JOB_ID = 987_654_321


def get(url: str, auth: tuple[str, str] | None = None) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5, auth=auth)
    except requests.ConnectionError:
        return None


def metric(url: str, name: str, **labels: str) -> float | None:
    response = get(url)
    if response is None or response.status_code != 200:
        return None
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def alive(*processes: Running) -> str | None:
    gone = [p for p in processes if p.process.poll() is not None]
    return "\n".join(p.log_tail() for p in gone) or None


@pytest.fixture
def ports() -> dict[str, int]:
    return {"metrics": free_port(), "flower": free_port()}


@pytest.fixture
def processes(
    tmp_path: Path, database_url: str, redis_url: str, ports: dict[str, int]
) -> Iterator[tuple[Running, Running]]:
    env = process_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            # Never called: the job below is not claimable, so no node or chain is needed.
            "STACKS_NODE_RPC_URL": f"http://127.0.0.1:{free_port()}",
            "STACKS_API_DATABASE_URL": database_url,
            "LOG_FORMAT": "json",
            "WORKER_CONCURRENCY": "2",
            "WORKER_METRICS_PORT": str(ports["metrics"]),
            "FLOWER_PORT": str(ports["flower"]),
            "FLOWER_BASIC_AUTH": ":".join(FLOWER_LOGIN),
        }
    )
    with (
        running("worker", procfile_command("worker"), env, tmp_path) as worker,
        running("flower", procfile_command("flower"), env, tmp_path) as flower,
    ):
        yield worker, flower


def test_worker_logs_json_counts_its_tasks_and_flower_sees_it(
    processes: tuple[Running, Running], redis_url: str, ports: dict[str, int]
) -> None:
    worker, flower = processes
    metrics_url = f"http://127.0.0.1:{ports['metrics']}/metrics"
    flower_url = f"http://127.0.0.1:{ports['flower']}"
    try:
        wait_until(
            lambda: get(metrics_url), 60, "the worker's metrics", alive=lambda: alive(worker)
        )
        app = create_celery_app(replace(Settings(), redis_url=redis_url))
        app.send_task(PROCESS_TOKEN_TASK, args=[MISSING_JOB_ID], queue=TOKENS_QUEUE)
        app.close()
        labels = {"task": PROCESS_TOKEN_TASK, "outcome": "skipped"}
        wait_until(
            lambda: metric(metrics_url, "token_metadata_jobs_total", **labels),
            60,
            "the job task to be counted",
            alive=lambda: alive(worker),
        )
        task = {"task": PROCESS_TOKEN_TASK, "outcome": "done"}
        assert metric(metrics_url, "token_metadata_tasks_total", **task) == 1
        assert metric(metrics_url, "token_metadata_queue_length", queue=TOKENS_QUEUE) == 0

        assert get(f"{flower_url}/api/workers").status_code == 401  # the login is required
        workers = wait_until(
            lambda: _flower_workers(flower_url),
            60,
            "Flower to see the worker",
            alive=lambda: alive(worker, flower),
        )
        assert any(name.startswith("celery@worker-") for name in workers)
        lengths = get(f"{flower_url}/api/queues/length", auth=FLOWER_LOGIN).json()
        assert {q["name"] for q in lengths["active_queues"]} == set(WORKER_QUEUES)
    except AssertionError:
        print(worker.log_tail(), flower.log_tail(), sep="\n")
        raise

    lines = worker.log_path.read_text().splitlines()
    # Anything before logging is set up (a warning about running as root) is not ours.
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    entries = [json.loads(line) for line in lines[first:] if line.strip()]
    assert any(e["logger"] == "celery.apps.worker" and "ready" in e["message"] for e in entries)
    skipped = [e for e in entries if "not claimable" in e["message"]]
    assert [e.get("job_id") for e in skipped] == [MISSING_JOB_ID]
    assert {"time", "level", "logger", "message"} <= skipped[0].keys()


def _flower_workers(url: str) -> dict[str, object] | None:
    response = get(f"{url}/api/workers?refresh=1", auth=FLOWER_LOGIN)
    if response is None or response.status_code != 200:
        return None
    return response.json() or None
