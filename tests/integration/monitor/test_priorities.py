"""Refreshes (notifications, dynamic tokens, re-mints) never delay new work: a token fetched
before goes to the `refresh` queue, consumed after `chain`, `contracts` and `tokens`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from sqlalchemy import select, update
from support.broker import emptied
from support.builders import add_contract, add_token
from support.processes import procfile_command

from shared.config import Settings
from shared.db import session_scope
from shared.jobs.transitions import mark_queued, queue_due_jobs
from shared.models import Job, JobStatus
from shared.queues import (
    IMAGES_QUEUE,
    REFRESH_QUEUE,
    TOKEN_BATCH_SIZE,
    TOKENS_QUEUE,
    WEBHOOKS_QUEUE,
    WORKER_QUEUES,
    JobMessage,
)
from workers.celery_app import create_celery_app
from workers.runtime import JobEnqueuer


def pending_jobs(sessions, processed: bool, count: int = 1) -> list[int]:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as s:
        contract = add_contract(s)
        tokens = [
            add_token(s, contract, n, job_status=JobStatus.PENDING, processed=processed)
            for n in range(1, count + 1)
        ]
        return list(s.scalars(select(Job.id).where(Job.token_id.in_([t.id for t in tokens]))))


def test_a_token_fetched_before_is_dispatched_as_a_refresh(sessions) -> None:
    (new,) = pending_jobs(sessions, processed=False)
    (old,) = pending_jobs(sessions, processed=True)
    with session_scope(sessions) as s:
        messages = mark_queued(s, [old, new])
    assert [(m.job_id, m.queue) for m in messages] == [(old, REFRESH_QUEUE), (new, TOKENS_QUEUE)]


def test_due_jobs_put_contracts_then_new_tokens_then_refreshes_first(sessions) -> None:
    refreshes = pending_jobs(sessions, processed=True, count=3)
    new = pending_jobs(sessions, processed=False, count=2)
    with session_scope(sessions) as s:  # the refreshes are older: age alone would favour them
        s.execute(update(Job).where(Job.id.in_(refreshes)).values(updated_at=Job.created_at))
        contract = add_contract(s, job_status=JobStatus.PENDING)
        contract_job = s.scalars(select(Job.id).where(Job.smart_contract_id == contract.id)).one()
    with session_scope(sessions) as s:
        messages = queue_due_jobs(s, 3)
    assert [m.job_id for m in messages] == [contract_job, *new]


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    with emptied(redis_url, *WORKER_QUEUES) as client:
        yield client


def test_workers_take_new_work_before_a_refresh_backlog(settings: Settings, broker) -> None:
    app = create_celery_app(replace(settings))
    enqueue = JobEnqueuer(app)
    refreshes = range(1, 2 * TOKEN_BATCH_SIZE + 11)  # a big refresh: three messages
    enqueue([JobMessage(n, False, is_refresh=True) for n in refreshes])
    enqueue([JobMessage(100, False), JobMessage(200, True)])  # then a new collection
    consumed: list[tuple[str, int]] = []

    def record(body, message) -> None:  # type: ignore[no-untyped-def]
        arg = body[0][0]  # a contract job id, or a batch of token job ids
        consumed.append(
            (message.delivery_info["routing_key"], arg[0] if isinstance(arg, list) else arg)
        )
        message.ack()

    with app.connection_for_read() as conn:
        consumer = conn.Consumer(
            queues=list(app.conf.task_queues), callbacks=[record], accept=["json"]
        )
        with consumer:
            consumer.qos(prefetch_count=1)
            for _ in range(3):
                conn.drain_events(timeout=5)
    app.close()
    assert consumed == [("contracts", 200), ("tokens", 100), (REFRESH_QUEUE, 1)]
    assert broker.llen(REFRESH_QUEUE) == 2  # the other refresh batches


def test_workers_consume_every_queue_in_priority_order() -> None:
    # Images and webhooks never delay metadata.
    assert WORKER_QUEUES[-3:] == (REFRESH_QUEUE, IMAGES_QUEUE, WEBHOOKS_QUEUE)
    command = procfile_command("worker")
    assert f"--queues {','.join(WORKER_QUEUES)} " in command
    app = create_celery_app(Settings())
    assert [q.name for q in app.conf.task_queues] == list(WORKER_QUEUES)
    assert app.conf.broker_transport_options["queue_order_strategy"] == "priority"
