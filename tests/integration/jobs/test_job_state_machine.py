"""Job rows in Postgres: claiming, finishing, retries and recovery (docs/job-engine.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token

from shared.db import session_scope
from shared.errors import RetryableJobError, SmartContractClarityError
from shared.jobs.runner import JobContext, run_job
from shared.jobs.transitions import (
    JobOutcome,
    claim_job,
    finish_job,
    mark_queued,
    queue_due_jobs,
)
from shared.models import Job, JobStatus, Sip
from shared.queues import JobMessage

LEASE = timedelta(minutes=2)


def token_job(sessions: sessionmaker[Session], status: JobStatus = JobStatus.QUEUED) -> int:
    with session_scope(sessions) as s:
        contract = add_contract(s)
        token = add_token(s, contract, job_status=status, processed=False)
        return s.scalars(select(Job.id).where(Job.token_id == token.id)).one()


def job_row(sessions: sessionmaker[Session], job_id: int) -> Job:
    with session_scope(sessions) as s:
        return s.get_one(Job, job_id)


def test_a_queued_job_is_claimed_once(sessions) -> None:
    job_id = token_job(sessions)
    with session_scope(sessions) as s:
        first = claim_job(s, job_id, LEASE)
    with session_scope(sessions) as s:
        second = claim_job(s, job_id, LEASE)
    assert first is not None
    assert second is None


def test_only_queued_jobs_can_be_claimed(sessions) -> None:
    for status in (JobStatus.PENDING, JobStatus.DONE, JobStatus.INVALID):
        job_id = token_job(sessions, status)
        with session_scope(sessions) as s:
            assert claim_job(s, job_id, LEASE) is None, status


def test_an_expired_claim_can_be_taken_over(sessions) -> None:
    job_id = token_job(sessions)
    with session_scope(sessions) as s:
        assert claim_job(s, job_id, timedelta(seconds=-1)) is not None
    with session_scope(sessions) as s:
        assert claim_job(s, job_id, LEASE) is not None


def test_a_job_pended_again_while_running_keeps_its_new_status(sessions) -> None:
    job_id = token_job(sessions)
    with session_scope(sessions) as s:
        claimed = claim_job(s, job_id, LEASE)
    with session_scope(sessions) as s:
        s.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.PENDING))
    with session_scope(sessions) as s:
        finish_job(s, claimed, JobOutcome(JobStatus.DONE))
    assert job_row(sessions, job_id).status == JobStatus.PENDING


def test_mark_queued_moves_only_pending_jobs_and_says_their_kind(sessions) -> None:
    pending, done = token_job(sessions, JobStatus.PENDING), token_job(sessions, JobStatus.DONE)
    with session_scope(sessions) as s:
        messages = mark_queued(s, [pending, done])
    assert messages == [JobMessage(pending, is_contract=False)]
    assert job_row(sessions, pending).status == JobStatus.QUEUED
    assert job_row(sessions, done).status == JobStatus.DONE


def test_due_jobs_wait_for_retry_after_and_contracts_come_first(sessions) -> None:
    later = token_job(sessions, JobStatus.PENDING)
    due = token_job(sessions, JobStatus.PENDING)
    with session_scope(sessions) as s:
        contract = add_contract(s, sip=Sip.SIP_009, job_status=JobStatus.PENDING)
        contract_job = s.scalars(select(Job.id).where(Job.smart_contract_id == contract.id)).one()
        s.execute(
            update(Job)
            .where(Job.id == later)
            .values(retry_after=Job.created_at + timedelta(hours=1))
        )
    with session_scope(sessions) as s:
        messages = queue_due_jobs(s, 100)
    ids = [m.job_id for m in messages]
    assert ids[0] == contract_job
    assert due in ids
    assert later not in ids


class Broker:
    def __init__(self) -> None:
        self.sent: list[JobMessage] = []

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.sent.extend(messages)


def test_retry_count_survives_pickups_and_the_job_fails_after_max_retries(
    settings, sessions
) -> None:
    ctx = JobContext(replace(settings, job_queue_max_retries=2), sessions, Broker())
    job_id = token_job(sessions)

    def busy(_job: object) -> list[int]:
        raise RetryableJobError("node busy")

    statuses = []
    for _ in range(3):
        with session_scope(sessions) as s:
            s.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.QUEUED))
        statuses.append(run_job(ctx, job_id, busy).status)
    assert statuses == [JobStatus.PENDING, JobStatus.PENDING, JobStatus.FAILED]
    row = job_row(sessions, job_id)
    assert row.status == JobStatus.FAILED
    assert "node busy" in row.last_error


def test_user_error_records_invalid_with_reason(settings, sessions) -> None:
    ctx = JobContext(settings, sessions, Broker())
    job_id = token_job(sessions)

    def clarity_error(_job: object) -> list[int]:
        raise SmartContractClarityError("(err u1)")

    run_job(ctx, job_id, clarity_error)
    row = job_row(sessions, job_id)
    assert (row.status, row.invalid_reason, row.locked_until) == (JobStatus.INVALID, 109, None)


def test_unexpected_exception_fails_the_job_instead_of_looping(settings, sessions) -> None:
    ctx = JobContext(settings, sessions, Broker())
    job_id = token_job(sessions)

    def bug(_job: object) -> list[int]:
        raise KeyError("oops")

    assert run_job(ctx, job_id, bug).status == JobStatus.FAILED
    assert job_row(sessions, job_id).last_error.startswith("KeyError")


def test_a_redis_outage_defers_the_job_without_spending_a_retry(settings, sessions) -> None:
    ctx = JobContext(replace(settings, job_queue_max_retries=0), sessions, Broker())
    job_id = token_job(sessions)

    def redis_down(_job: object) -> list[int]:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    assert run_job(ctx, job_id, redis_down).status == JobStatus.PENDING
    row = job_row(sessions, job_id)
    assert (row.status, row.retry_count, row.locked_until) == (JobStatus.PENDING, 0, None)
    assert row.retry_after is not None  # waits for the outage instead of failing at once
