"""A queued job whose message is nowhere on the broker is dispatched again within a minute
or so, not after the 10-minute rule: a worker killed between popping a message and recording
it as unacknowledged takes the message with it (docs/job-engine.md#lost-messages).

Real Celery messages on the real Redis: one waits on its queue, one is held unacknowledged by
a consumer, one was never anywhere."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis
from kombu.transport.redis import Channel
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token

from shared.config import Settings
from shared.db import session_scope
from shared.jobs import broker_messages
from shared.jobs.dispatch import Dispatcher, dispatch_due
from shared.jobs.recovery import BROKER_MARKER_KEY, IN_FLIGHT_KEY, LOST_MESSAGE_SCAN_KEY
from shared.models import Job, JobStatus
from shared.queues import PROCESS_TOKENS_TASK, TOKENS_QUEUE, JobMessage
from workers.celery_app import create_celery_app


class Sent:
    def __init__(self) -> None:
        self.job_ids: list[int] = []

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.job_ids += [message.job_id for message in messages]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    broker_keys = [*broker_messages.queue_keys(), Channel.unacked_key, Channel.unacked_index_key]
    client.delete(IN_FLIGHT_KEY, LOST_MESSAGE_SCAN_KEY, *broker_keys)
    client.set(BROKER_MARKER_KEY, "present")  # the broker has not lost its data
    yield client
    client.delete(IN_FLIGHT_KEY, LOST_MESSAGE_SCAN_KEY, *broker_keys)
    client.close()


def dispatch(sessions: sessionmaker[Session], client: redis.Redis, sent: Sent) -> Any:
    return dispatch_due(
        Dispatcher(
            sessions=sessions,
            redis=client,
            enqueue=sent,
            enqueue_images=lambda ids: None,
            images_enabled=False,
        )
    )


def age_queued_jobs(sessions: sessionmaker[Session], age: timedelta) -> None:
    with session_scope(sessions) as s:
        s.execute(
            text("UPDATE jobs SET updated_at = now() - :age WHERE status = 'queued'"),
            {"age": age},
        )


def statuses(sessions: sessionmaker[Session], job_ids: Sequence[int]) -> list[JobStatus]:
    with session_scope(sessions) as s:
        rows = dict(s.query(Job.id, Job.status).filter(Job.id.in_(job_ids)).all())
    return [rows[job_id] for job_id in job_ids]


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    app = create_celery_app(settings)
    yield app
    app.close()


def send_batch(app: Any, job_ids: list[int]) -> None:
    app.send_task(PROCESS_TOKENS_TASK, args=[job_ids], queue=TOKENS_QUEUE)


@contextmanager
def held_unacknowledged(app: Any) -> Iterator[None]:
    """Take the tokens queue's oldest message as a worker does (acks_late) and keep it until
    the block ends; closing the connection then puts it back, as a worker's ending does
    (left open, kombu would do that at the interpreter's exit, when the run's Redis may be
    gone)."""
    with app.connection_for_read() as connection:
        message = connection.default_channel.basic_get(queue=TOKENS_QUEUE, no_ack=False)
        assert message is not None
        assert message.headers["task"] == PROCESS_TOKENS_TASK
        yield


def dispatched_jobs(sessions: sessionmaker[Session], client: redis.Redis, count: int) -> list[int]:
    with session_scope(sessions) as s:
        contract = add_contract(s)
        for n in range(1, count + 1):
            add_token(s, contract, n, job_status=JobStatus.PENDING, processed=False)
    sent = Sent()
    assert dispatch(sessions, client, sent).jobs == count
    return sorted(sent.job_ids)


def test_a_job_whose_message_is_nowhere_is_dispatched_again(sessions, client, app) -> None:
    waiting_a, waiting_b, held, lost = dispatched_jobs(sessions, client, 4)
    send_batch(app, [held])
    with held_unacknowledged(app):  # a live worker has it: in Redis's unacknowledged set
        send_batch(app, [waiting_a, waiting_b])  # waits on its queue
        # `lost`'s message was popped by a worker killed before it recorded it: nowhere.
        age_queued_jobs(sessions, timedelta(minutes=2))

        sent = Sent()
        dispatched = dispatch(sessions, client, sent)
        assert dispatched.lost_messages == 1
        assert sent.job_ids == [lost]  # pending again, and sent again by the same dispatch
        assert statuses(sessions, [waiting_a, waiting_b, held, lost]) == [JobStatus.QUEUED] * 4


def test_a_job_queued_less_than_a_minute_ago_is_left_alone(sessions, client) -> None:
    (job,) = dispatched_jobs(sessions, client, 1)  # no message anywhere, but just queued
    age_queued_jobs(sessions, timedelta(seconds=20))
    sent = Sent()
    assert dispatch(sessions, client, sent).lost_messages == 0
    assert sent.job_ids == []
    assert client.get(LOST_MESSAGE_SCAN_KEY) is None  # nothing suspect: the broker was not read
    assert statuses(sessions, [job]) == [JobStatus.QUEUED]


def test_the_broker_is_read_at_most_every_30_seconds(sessions, client) -> None:
    first, second = dispatched_jobs(sessions, client, 2)
    age_queued_jobs(sessions, timedelta(minutes=2))
    client.set(LOST_MESSAGE_SCAN_KEY, "1", ex=30)  # another dispatch read it just now
    sent = Sent()
    assert dispatch(sessions, client, sent).lost_messages == 0
    assert sent.job_ids == []
    client.delete(LOST_MESSAGE_SCAN_KEY)  # 30 s later
    assert dispatch(sessions, client, sent).lost_messages == 2
    assert sorted(sent.job_ids) == [first, second]
    assert 0 < client.ttl(LOST_MESSAGE_SCAN_KEY) <= 30


def test_a_broker_too_full_to_read_leaves_it_to_the_staleness_rule(
    sessions, client, app, monkeypatch
) -> None:
    (job,) = dispatched_jobs(sessions, client, 1)
    send_batch(app, [10**9])  # someone else's message
    send_batch(app, [10**9 + 1])
    age_queued_jobs(sessions, timedelta(minutes=2))
    monkeypatch.setattr(broker_messages, "MAX_MESSAGES", 1)
    sent = Sent()
    assert dispatch(sessions, client, sent).lost_messages == 0
    assert statuses(sessions, [job]) == [JobStatus.QUEUED]
