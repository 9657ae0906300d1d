"""Runs one job: claim it, do the work, record how it ended (reference sections 4.3-4.4)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import session_scope
from shared.deadline import job_deadline
from shared.errors import (
    HostBusyError,
    JobError,
    RetryableJobError,
    TooManyRequestsError,
    UserError,
)
from shared.models import Job, JobStatus
from shared.queues import Enqueue
from shared.services.jobs import ClaimedJob, JobOutcome, claim_job, finish_job, mark_queued
from shared.services.leases import LeaseKeeper
from shared.services.rate_limits import remember_rate_limited_host

log = logging.getLogger(__name__)

# How long a job interrupted by a database outage waits before it is tried again.
DATABASE_RETRY_S = 5.0


@dataclass
class JobContext:
    """What a job needs from its process: settings, sessions and the broker port."""

    settings: Settings
    sessions: sessionmaker[Session]
    enqueue: Enqueue
    # Renews running jobs' leases; without one a claim simply lasts twice the job timeout.
    leases: LeaseKeeper | None = None


# A job's work: does its own final write (calling `finish_job`) and returns job ids to
# dispatch once that write has committed.
Work = Callable[[ClaimedJob], Sequence[int]]


def run_job(ctx: JobContext, job_id: int, work: Work) -> JobOutcome | None:
    """Claim `job_id` and run `work`; None when another delivery already has the job."""
    if ctx.leases is not None:
        lease = ctx.leases.lease
    else:
        lease = timedelta(milliseconds=ctx.settings.job_queue_timeout_ms * 2)
    with session_scope(ctx.sessions) as session:
        job = claim_job(session, job_id, lease)
    if job is None:
        log.info("job %s is not claimable (done, pending again or held elsewhere)", job_id)
        return None
    keeping = ctx.leases.holding(job.id) if ctx.leases is not None else nullcontext()
    try:
        with keeping, job_deadline(ctx.settings.job_queue_timeout_ms / 1000):
            follow_up = work(job)
    except HostBusyError as exc:
        with session_scope(ctx.sessions) as session:
            defer_job(session, job, exc.retry_after_s or 1.0)
        return JobOutcome(JobStatus.PENDING, retry_after_s=exc.retry_after_s)
    except OperationalError:
        # Postgres went away mid-job (restart, failover): not the token's fault. Try again
        # later without using a retry; if Postgres is still down the lease runs out instead.
        log.warning("job %s interrupted by a database error; retrying later", job_id)
        with suppress(OperationalError), session_scope(ctx.sessions) as session:
            defer_job(session, job, DATABASE_RETRY_S)
        return JobOutcome(JobStatus.PENDING, retry_after_s=DATABASE_RETRY_S)
    except JobError as exc:
        outcome = outcome_for_error(exc, job, ctx.settings)
        log.info("job %s ended %s: %s", job_id, outcome.status.value, exc)
        rate_limited = exc if isinstance(exc, TooManyRequestsError) else None
    except Exception as exc:
        # A bug or an outage: record it rather than loop; if Postgres is down this raises
        # too, and the job's lease runs out so the reaper hands it out again.
        log.exception("job %s failed unexpectedly", job_id)
        outcome = JobOutcome(JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        rate_limited = None
    else:
        dispatch(ctx, follow_up)
        return JobOutcome(JobStatus.DONE)
    with session_scope(ctx.sessions) as session:
        if rate_limited is not None:
            remember_rate_limited_host(
                session, rate_limited, ctx.settings.metadata_rate_limited_host_retry_after
            )
        finish_job(session, job, outcome)
    return outcome


def outcome_for_error(exc: JobError, job: ClaimedJob, settings: Settings) -> JobOutcome:
    """Retryable -> pending (until max retries, fix 1); user error -> invalid; else failed."""
    if isinstance(exc, RetryableJobError):
        retries = job.retry_count + 1
        if settings.job_queue_strict_mode or retries <= settings.job_queue_max_retries:
            delay = exc.retry_after_s
            if delay is None:
                delay = backoff_s(settings.job_queue_retry_after_ms / 1000, job.retry_count)
            return JobOutcome(JobStatus.PENDING, retry_after_s=delay, error=str(exc))
        return JobOutcome(JobStatus.FAILED, error=f"gave up after {retries - 1} retries: {exc}")
    if isinstance(exc, UserError):
        return JobOutcome(JobStatus.INVALID, invalid_reason=exc.reason, error=str(exc))
    return JobOutcome(JobStatus.FAILED, error=str(exc))


MAX_BACKOFF_S = 3600.0


def backoff_s(base_s: float, retries_so_far: int) -> float:
    """Exponential back-off: base, 2x base, 4x base ... capped at an hour."""
    return float(min(base_s * 2 ** min(retries_so_far, 20), MAX_BACKOFF_S))


def defer_job(session: Session, job: ClaimedJob, delay_s: float) -> None:
    """Back to pending for a moment without using a retry (the host was busy, not failing)."""
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.PENDING,
            locked_until=None,
            retry_after=func.now() + timedelta(seconds=delay_s),
            updated_at=func.now(),
        )
    )


def dispatch(ctx: JobContext, job_ids: Sequence[int]) -> None:
    """Mark pending jobs queued, commit, then hand their messages to the broker."""
    if not job_ids:
        return
    with session_scope(ctx.sessions) as session:
        messages = mark_queued(session, job_ids)
    ctx.enqueue(messages)
