"""Beat's dispatcher (`dispatch_due`) on real Postgres and Redis, at each point where it can
die: before the commit, between the commit and the send, between the send and removing its
in-flight record. Whatever the crash, no due job is lost and none runs twice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token

from shared.db import session_scope
from shared.jobs.dispatch import Dispatcher, dispatch_due
from shared.jobs.recovery import BROKER_MARKER_KEY, IN_FLIGHT_KEY
from shared.jobs.table import JobOutcome
from shared.jobs.transitions import claim_job, finish_job
from shared.models import Job, JobStatus
from shared.queues import JobMessage


class ProcessDied(Exception):
    """Stands for the dispatcher's process dying at this point."""


class Sent:
    """The broker port: notes what was sent, and what the database showed at that moment."""

    def __init__(self, sessions: sessionmaker[Session], dies: bool = False) -> None:
        self.sessions = sessions
        self.dies = dies
        self.job_ids: list[int] = []
        self.statuses_at_send: dict[int, JobStatus] = {}

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        if self.dies:
            raise ProcessDied("between the commit and the send")
        ids = [message.job_id for message in messages]
        with session_scope(self.sessions) as s:  # another connection: sees committed rows only
            rows = s.execute(select(Job.id, Job.status).where(Job.id.in_(ids))).all()
        self.statuses_at_send.update({row.id: row.status for row in rows})
        self.job_ids += ids


def no_images(job_ids: Sequence[int]) -> None:
    assert not job_ids


def dying_after_the_send(job_ids: Sequence[int]) -> None:
    raise ProcessDied("after the send, before the record was removed")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.delete(IN_FLIGHT_KEY)
    client.set(BROKER_MARKER_KEY, "present")  # the broker has not lost its data
    yield client
    client.delete(IN_FLIGHT_KEY)
    client.close()


def dispatcher(
    sessions: sessionmaker[Session], client: Any, sent: Sent, **overrides: Any
) -> Dispatcher:
    options: dict[str, Any] = {"enqueue_images": no_images, "images_enabled": False}
    options.update(overrides)
    return Dispatcher(sessions=sessions, redis=client, enqueue=sent, **options)


def due_token_jobs(sessions: sessionmaker[Session], count: int) -> list[int]:
    with session_scope(sessions) as s:
        contract = add_contract(s)
        tokens = [
            add_token(s, contract, n, job_status=JobStatus.PENDING, processed=False)
            for n in range(1, count + 1)
        ]
        s.flush()
        token_ids = [token.id for token in tokens]
        return list(s.scalars(select(Job.id).where(Job.token_id.in_(token_ids)).order_by(Job.id)))


def statuses(sessions: sessionmaker[Session], job_ids: Sequence[int]) -> list[JobStatus]:
    with session_scope(sessions) as s:
        found = dict(s.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids))).all())
    return [found[job_id] for job_id in job_ids]


def test_due_jobs_are_committed_as_queued_before_their_messages_are_sent(sessions, client) -> None:
    job_ids = due_token_jobs(sessions, 3)
    sent = Sent(sessions)
    dispatched = dispatch_due(dispatcher(sessions, client, sent))
    assert (dispatched.jobs, sorted(sent.job_ids)) == (3, job_ids)
    assert set(sent.statuses_at_send.values()) == {JobStatus.QUEUED}
    assert client.hlen(IN_FLIGHT_KEY) == 0  # the record lives only for the span of the send
    assert dispatch_due(dispatcher(sessions, client, Sent(sessions))).jobs == 0  # sent once


def test_a_dispatcher_that_dies_before_its_commit_leaves_the_jobs_pending(sessions, client) -> None:
    job_ids = due_token_jobs(sessions, 2)

    class RecordFails:  # Redis refuses the in-flight record: nothing may be committed
        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def hset(self, *args: Any) -> Any:
            raise redis.ConnectionError("Redis went away")

    sent = Sent(sessions)
    with pytest.raises(redis.ConnectionError):
        dispatch_due(dispatcher(sessions, RecordFails(), sent))
    assert statuses(sessions, job_ids) == [JobStatus.PENDING] * 2
    assert sent.job_ids == []
    dispatch_due(dispatcher(sessions, client, sent))  # Redis is back
    assert sorted(sent.job_ids) == job_ids


def test_jobs_committed_but_never_sent_are_sent_by_the_next_dispatch(sessions, client) -> None:
    job_ids = due_token_jobs(sessions, 3)
    with pytest.raises(ProcessDied):
        dispatch_due(dispatcher(sessions, client, Sent(sessions, dies=True)))
    assert statuses(sessions, job_ids) == [JobStatus.QUEUED] * 3  # committed, never sent
    assert client.hlen(IN_FLIGHT_KEY) == 1

    too_soon = Sent(sessions)
    assert dispatch_due(dispatcher(sessions, client, too_soon)).interrupted == 0
    assert too_soon.job_ids == []  # the dispatcher might still be sending

    sent = Sent(sessions)
    dispatched = dispatch_due(dispatcher(sessions, client, sent, in_flight_grace_s=-1))
    assert (dispatched.interrupted, dispatched.jobs) == (3, 3)
    assert sorted(sent.job_ids) == job_ids
    assert client.hlen(IN_FLIGHT_KEY) == 0


def test_jobs_sent_whose_record_stayed_behind_still_run_once(sessions, client) -> None:
    running, waiting = due_token_jobs(sessions, 2)
    first = Sent(sessions)
    with pytest.raises(ProcessDied):
        dispatch_due(
            dispatcher(
                sessions,
                client,
                first,
                images_enabled=True,
                enqueue_images=dying_after_the_send,
            )
        )
    assert sorted(first.job_ids) == [running, waiting]  # both messages are on the broker
    assert client.hlen(IN_FLIGHT_KEY) == 1  # but the record was never removed
    with session_scope(sessions) as s:
        claimed = claim_job(s, running, timedelta(minutes=1))  # a worker runs the first
    assert claimed is not None

    second = Sent(sessions)
    dispatched = dispatch_due(dispatcher(sessions, client, second, in_flight_grace_s=-1))
    assert dispatched.interrupted == 1  # only the unclaimed job could have lost its message
    assert second.job_ids == [waiting]  # the running job is left to its worker
    assert statuses(sessions, [running, waiting]) == [JobStatus.QUEUED] * 2

    # `waiting` now has two messages on the broker: the first claim runs it, the second
    # finds it done.
    with session_scope(sessions) as s:
        job = claim_job(s, waiting, timedelta(minutes=1))
        assert job is not None
        finish_job(s, job, JobOutcome(JobStatus.DONE))
    with session_scope(sessions) as s:
        assert claim_job(s, waiting, timedelta(minutes=1)) is None
    assert client.hlen(IN_FLIGHT_KEY) == 0
