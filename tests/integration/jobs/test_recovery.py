"""Stranded jobs come back: leases of dead workers expire, lost broker messages are noticed."""

from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token

from shared.db import session_scope
from shared.jobs.leases import LeaseKeeper
from shared.jobs.recovery import (
    BROKER_MARKER_KEY,
    IN_FLIGHT_KEY,
    broker_lost_its_data,
    forget_dispatches,
    reap_stranded_jobs,
    recover_interrupted_dispatches,
    sending,
)
from shared.jobs.transitions import claim_job
from shared.models import Job, JobStatus

STALE = timedelta(minutes=10)


def queued_job(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as s:
        token = add_token(s, add_contract(s), job_status=JobStatus.QUEUED, processed=False)
        return s.scalars(select(Job.id).where(Job.token_id == token.id)).one()


def status(sessions: sessionmaker[Session], job_id: int) -> JobStatus:
    with session_scope(sessions) as s:
        return s.get_one(Job, job_id).status


def reap(sessions: sessionmaker[Session], broker_reset: bool = False):  # type: ignore[no-untyped-def]
    with session_scope(sessions) as s:
        return reap_stranded_jobs(s, broker_reset, STALE)


def test_a_dead_workers_job_is_freed_when_its_lease_runs_out(sessions) -> None:
    job_id = queued_job(sessions)
    with session_scope(sessions) as s:
        claim_job(s, job_id, timedelta(seconds=-1))  # claimed by a worker that then died
    assert reap(sessions).expired_leases == 1
    assert status(sessions, job_id) == JobStatus.PENDING


def test_a_live_lease_is_left_alone(sessions) -> None:
    job_id = queued_job(sessions)
    with session_scope(sessions) as s:
        claim_job(s, job_id, timedelta(minutes=1))
    assert reap(sessions, broker_reset=True) == reap(sessions)  # nothing either way
    assert status(sessions, job_id) == JobStatus.QUEUED


def test_unclaimed_queued_jobs_wait_for_their_message_unless_the_broker_was_reset(
    sessions,
) -> None:
    job_id = queued_job(sessions)
    assert reap(sessions).lost_messages == 0
    assert status(sessions, job_id) == JobStatus.QUEUED
    assert reap(sessions, broker_reset=True).lost_messages == 1
    assert status(sessions, job_id) == JobStatus.PENDING


def test_a_message_lost_long_ago_is_recovered_by_staleness(sessions) -> None:
    job_id = queued_job(sessions)
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id == job_id).values(updated_at=func.now() - STALE * 2))
    assert reap(sessions).lost_messages == 1
    assert status(sessions, job_id) == JobStatus.PENDING


def test_the_broker_marker_notices_a_flush(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete(BROKER_MARKER_KEY)
    assert broker_lost_its_data(client) is True
    assert broker_lost_its_data(client) is False
    client.flushdb()
    assert broker_lost_its_data(client) is True
    client.close()


def test_the_lease_keeper_renews_only_running_jobs(sessions) -> None:
    running, finished = queued_job(sessions), queued_job(sessions)
    keeper = LeaseKeeper(sessions, lease=timedelta(minutes=5))
    with session_scope(sessions) as s:
        for job_id in (running, finished):
            claim_job(s, job_id, timedelta(seconds=1))
    with keeper.holding(running):
        with keeper.holding(finished):
            pass
        assert keeper.renew() == 1
    keeper.stop()
    with session_scope(sessions) as s:
        jobs = s.scalars(select(Job).where(Job.id.in_([running, finished])))
        leases = {j.id: j.locked_until - j.updated_at for j in jobs}
    assert leases[running] > timedelta(minutes=4)
    assert leases[finished] <= timedelta(seconds=1)


def test_a_dispatch_that_died_between_commit_and_send_is_recovered(
    sessions, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete(IN_FLIGHT_KEY)
    sent, lost, claimed = queued_job(sessions), queued_job(sessions), queued_job(sessions)
    with sending(client, [sent]):
        pass  # this dispatch finished: its record is gone
    with session_scope(sessions) as s:
        claim_job(s, claimed, timedelta(minutes=1))  # its message did arrive
    dying = sending(client, [lost, claimed])
    dying.__enter__()  # committed, then the process died before sending
    with session_scope(sessions) as s:
        assert recover_interrupted_dispatches(s, client) == (0, [])  # too recent to tell
    with session_scope(sessions) as s:
        recovered, records = recover_interrupted_dispatches(s, client, grace_s=-1)
    forget_dispatches(client, records)
    assert recovered == 1
    assert [status(sessions, j) for j in (sent, lost, claimed)] == [
        JobStatus.QUEUED,
        JobStatus.PENDING,
        JobStatus.QUEUED,
    ]
    assert client.hlen(IN_FLIGHT_KEY) == 0
