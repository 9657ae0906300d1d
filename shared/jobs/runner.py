"""Runs one job: claim it, do the work, record how it ended (docs/job-engine.md#outcomes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Generic, TypeVar

import redis
from sqlalchemy.exc import DataError, OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import session_scope
from shared.deadline import job_deadline, job_deadline_at
from shared.errors import JobError, MetadataParseError, TooManyRequestsError
from shared.indexing.host_slots import Grant, HostSlots
from shared.indexing.rate_limits import remember_rate_limited_host
from shared.jobs.leases import LeaseKeeper
from shared.jobs.outcomes import outcome_for_error
from shared.jobs.table import deferral
from shared.jobs.transitions import (
    ClaimedJob,
    JobOutcome,
    claim_job,
    claim_jobs,
    finish_job,
    finish_jobs,
    mark_queued,
)
from shared.logs import bind_log_context, log_context
from shared.models import JobStatus
from shared.queues import Enqueue

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

# How long a job interrupted by a database or Redis outage waits before it is tried again.
DATABASE_RETRY_S = 5.0
# Outages of our own infrastructure: the job is not at fault, so it waits and runs again
# without spending a retry (a Redis restart must not end the tokens in flight `failed`).
OUTAGE_ERRORS = (OperationalError, redis.ConnectionError, redis.TimeoutError)


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
    with log_context(job_id=job_id):
        return _run_job(ctx, job_id, work)


def _run_job(ctx: JobContext, job_id: int, work: Work) -> JobOutcome | None:
    with session_scope(ctx.sessions) as session:
        job = claim_job(session, job_id, _lease(ctx))
    if job is None:
        log.info("job %s is not claimable (done, pending again or held elsewhere)", job_id)
        return None
    bind_log_context(token_id=job.token_id, contract_id=job.smart_contract_id)
    keeping = ctx.leases.holding(job.id) if ctx.leases is not None else nullcontext()
    try:
        with keeping, job_deadline(ctx.settings.job_queue_timeout_ms / 1000):
            follow_up = work(job)
    except Exception as exc:
        return settle_errors(ctx, [(job, exc)])[job.id]
    dispatch(ctx, follow_up)
    return JobOutcome(JobStatus.DONE)


@dataclass(frozen=True)
class NeedsHost(Generic[R]):
    """What a read returns when the rest of it fetches from `host`: `then` runs on the fetch
    pool once this process holds one of the host's slots. No thread waits meanwhile."""

    slots: HostSlots
    host: str
    then: Callable[[], R]


@dataclass(frozen=True)
class BatchWork(Generic[T, R]):
    """A job kind run many at a time: the database parts once per batch, the network part
    of each job concurrently."""

    # The jobs' subjects (job id -> item); a job missing from the answer has nothing left to do.
    load: Callable[[Session, Sequence[ClaimedJob]], Mapping[int, T]]
    # Node calls and fetches for one item; runs on the fetch pool under the job's deadline.
    # Returns NeedsHost where the rest must wait for a busy host.
    read: Callable[[T], R | NeedsHost[R]]
    # Writes items' results inside one transaction.
    store: Callable[[Session, Sequence[tuple[T, R]]], object]
    # Writes what is kept of items whose run failed, in the transaction that ends their jobs.
    failed: Callable[[Session, Sequence[tuple[T, Exception]]], object] | None = None


def run_batch(
    ctx: JobContext, job_ids: Sequence[int], work: BatchWork[T, R], pool: Executor
) -> dict[int, JobOutcome]:
    """Claim what can be claimed of `job_ids`, read them concurrently, store them together.

    One claim, one commit for every success and one lease heartbeat for the whole batch; a
    job that another delivery holds is left alone (absent from the answer).
    """
    with session_scope(ctx.sessions) as session:
        jobs = claim_jobs(session, job_ids, _lease(ctx), tokens_only=True)
        items = work.load(session, jobs) if jobs else {}
        gone = [job for job in jobs if job.id not in items]
        finish_jobs(session, gone, JobOutcome(JobStatus.DONE))
    outcomes = {job.id: JobOutcome(JobStatus.DONE) for job in gone}
    live = [job for job in jobs if job.id in items]
    if not live:
        return outcomes
    timeout_s = ctx.settings.job_queue_timeout_ms / 1000
    keeping = ctx.leases.holding(*(j.id for j in live)) if ctx.leases else nullcontext()
    with keeping:
        futures = [(job, start_read(pool, work.read, items[job.id], timeout_s)) for job in live]
        read: list[tuple[ClaimedJob, R]] = []
        errors: list[tuple[ClaimedJob, Exception]] = []
        for job, future in futures:
            try:
                read.append((job, future.result()))
            except Exception as exc:
                errors.append((job, exc))
    try:
        with session_scope(ctx.sessions) as session:
            work.store(session, [(items[job.id], data) for job, data in read])
            finish_jobs(session, [job for job, _ in read], JobOutcome(JobStatus.DONE))
    except Exception as exc:
        if isinstance(exc, OperationalError):
            errors += [(job, exc) for job, _ in read]
        else:  # one bad row must not sink the batch: store the others one by one
            log.warning("batch store failed (%s); storing its %d jobs one by one", exc, len(read))
            failed = _store_each(ctx, work, items, read)
            failed_ids = {job.id for job, _ in failed}
            outcomes.update(
                (job.id, JobOutcome(JobStatus.DONE)) for job, _ in read if job.id not in failed_ids
            )
            errors += failed
    else:
        outcomes.update((job.id, JobOutcome(JobStatus.DONE)) for job, _ in read)
    keep_failed = work.failed
    if keep_failed is None:
        outcomes.update(settle_errors(ctx, errors))
        return outcomes

    def record(session: Session, ended: Sequence[tuple[ClaimedJob, Exception]]) -> None:
        keep_failed(session, [(items[job.id], exc) for job, exc in ended])

    outcomes.update(settle_errors(ctx, errors, record))
    return outcomes


def start_read(
    pool: Executor, read: Callable[[T], R | NeedsHost[R]], item: T, timeout_s: float
) -> Future[R]:
    """Run `read(item)` on `pool`; if it needs a busy host, its rest runs on the pool once a
    slot is granted. The deadline (`timeout_s` from now) covers both parts and the wait."""
    deadline = time.monotonic() + timeout_s
    answer: Future[R] = Future()

    def first() -> None:
        try:
            with job_deadline_at(deadline):
                result = read(item)
            if not isinstance(result, NeedsHost):
                answer.set_result(result)
                return
            wait_s = min(result.slots.max_wait_s, deadline - time.monotonic())
            grant = result.slots.request(result.host, partial(granted, result), wait_s)
        except BaseException as exc:
            answer.set_exception(exc)
            return
        if grant is not None:  # a slot was free: go on in this thread
            rest(result, grant)

    def granted(staged: NeedsHost[R], grant: Grant | Exception) -> None:
        """Called by the slot scheduler from any thread: must not block."""
        if isinstance(grant, Exception):
            answer.set_exception(grant)
            return
        try:
            pool.submit(rest, staged, grant)
        except RuntimeError as exc:  # the pool is shutting down
            staged.slots.release(grant)
            answer.set_exception(exc)

    def rest(staged: NeedsHost[R], grant: Grant) -> None:
        try:
            with staged.slots.holding(grant), job_deadline_at(deadline):
                value = staged.then()
        except BaseException as exc:
            staged.slots.release(grant)
            answer.set_exception(exc)
            return
        staged.slots.release(grant)
        answer.set_result(value)

    pool.submit(first)
    return answer


def _store_each(
    ctx: JobContext,
    work: BatchWork[T, R],
    items: Mapping[int, T],
    read: Sequence[tuple[ClaimedJob, R]],
) -> list[tuple[ClaimedJob, Exception]]:
    errors: list[tuple[ClaimedJob, Exception]] = []
    for job, data in read:
        try:
            with session_scope(ctx.sessions) as session:
                work.store(session, [(items[job.id], data)])
                finish_jobs(session, [job], JobOutcome(JobStatus.DONE))
        except Exception as exc:
            errors.append((job, exc))
    return errors


def settle_errors(
    ctx: JobContext,
    errors: Sequence[tuple[ClaimedJob, Exception]],
    record: Callable[[Session, Sequence[tuple[ClaimedJob, Exception]]], object] | None = None,
) -> dict[int, JobOutcome]:
    """Record how each error ends its job, in one transaction; see `outcome_for_error`.
    `record` writes what else the failures leave (the token jobs' fetch attempts).

    A busy host or a database outage is nobody's fault: the job goes back to pending without
    using a retry. If Postgres is down this write fails too and the leases run out instead.
    """
    outcomes: dict[int, JobOutcome] = {}
    if not errors:
        return outcomes
    try:
        with session_scope(ctx.sessions) as session:
            for job, exc in errors:
                outcomes[job.id] = _settle(session, ctx.settings, job, exc)
            if record is not None:
                record(session, errors)
    except OperationalError:
        log.warning("could not record the end of %d jobs: the database is unreachable", len(errors))
    return outcomes


def _settle(session: Session, settings: Settings, job: ClaimedJob, exc: Exception) -> JobOutcome:
    if isinstance(exc, OUTAGE_ERRORS):
        log.warning("job %s interrupted by an outage (%s); retrying later", job.id, exc)
        outcome = deferral(DATABASE_RETRY_S)
    elif _unstorable(exc):
        # A value the documents' cleaning missed: the token's data is at fault, not the network.
        log.warning("job %s: Postgres refused its data (%s)", job.id, exc)
        refused = MetadataParseError(f"Metadata could not be stored: {_first_line(exc)}")
        outcome = outcome_for_error(refused, job.retry_count, settings)
    elif isinstance(exc, JobError):
        outcome = outcome_for_error(exc, job.retry_count, settings)
        log.info("job %s ended %s: %s", job.id, outcome.status.value, exc)
        if isinstance(exc, TooManyRequestsError):
            remember_rate_limited_host(
                session, exc, settings.metadata_rate_limited_host_retry_after
            )
    else:
        # A bug: record it rather than loop.
        log.error("job %s failed unexpectedly", job.id, exc_info=exc)
        outcome = JobOutcome(JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    finish_job(session, job, outcome)
    return outcome


def _unstorable(exc: Exception) -> bool:
    """Postgres refused a value (an invalid escape, a number out of range), or a string could
    not even be encoded for it."""
    if isinstance(exc, DataError | UnicodeError):
        return True
    return isinstance(exc, StatementError) and isinstance(exc.orig, UnicodeError)


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _lease(ctx: JobContext) -> timedelta:
    if ctx.leases is not None:
        return ctx.leases.lease
    return timedelta(milliseconds=ctx.settings.job_queue_timeout_ms * 2)


def dispatch(ctx: JobContext, job_ids: Sequence[int]) -> None:
    """Mark pending jobs queued, commit, then hand their messages to the broker."""
    if not job_ids:
        return
    with session_scope(ctx.sessions) as session:
        messages = mark_queued(session, job_ids)
    ctx.enqueue(messages)
