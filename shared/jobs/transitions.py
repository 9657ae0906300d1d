"""Contract and token jobs (`jobs`): their messages, which are due first, their claims and
refreshes, over the state machine every job table shares (`shared/jobs/table.py`).

A message on the broker only says "look at job N". Claiming is a conditional UPDATE, so a
message delivered twice, or to two workers, is processed once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, text
from sqlalchemy.orm import Session

from shared.changes import entry, record
from shared.jobs.table import FINISHED, TOKEN_JOBS, JobOutcome, ids_in_column
from shared.models import ChangeKind, Job, JobStatus, JobTrigger, Token
from shared.queues import JobMessage
from shared.sql_params import array_of, joined

__all__ = ["FINISHED", "ClaimedJob", "JobOutcome"]

DISPATCH_CHUNK = 1000


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    token_id: int | None
    smart_contract_id: int | None
    retry_count: int
    # What made the job due, and when its cause happened (docs/fetch-history.md#triggers).
    trigger: str = JobTrigger.IMPORT.value
    caused_at: datetime | None = None


def mark_queued(session: Session, job_ids: Sequence[int]) -> list[JobMessage]:
    """pending -> queued for these jobs; returns the messages to send after the commit.

    A token that was processed before (`tokens.updated_at` set) already answers on the API,
    so its message is a refresh and goes to the lowest-priority queue.
    """
    processed_before = (
        select(Token.updated_at.is_not(None)).where(Token.id == Job.token_id).scalar_subquery()
    )
    messages: list[JobMessage] = []
    for start in range(0, len(job_ids), DISPATCH_CHUNK):
        chunk = list(job_ids[start : start + DISPATCH_CHUNK])
        returning = (Job.smart_contract_id, processed_before.label("refresh"))
        rows = TOKEN_JOBS.mark_queued(session, chunk, returning)
        messages.extend(
            JobMessage(row.id, row.smart_contract_id is not None, bool(row.refresh)) for row in rows
        )
    position = {job_id: index for index, job_id in enumerate(job_ids)}
    return sorted(messages, key=lambda message: position[message.job_id])  # RETURNING is unordered


# How many token jobs of one contract may wait on the broker at once (queued, not yet claimed).
# Deep enough that a worker never runs dry between two dispatches of a fast host; shallow
# enough that a contract enumerated a moment before another does not fill the queue ahead of
# it: every dispatch tops each contract up to this, in turns (see `due_token_jobs_in_turns`).
TOKEN_JOBS_AHEAD_PER_CONTRACT = 1000


def queue_due_jobs(
    session: Session, limit: int, ahead: int = TOKEN_JOBS_AHEAD_PER_CONTRACT
) -> list[JobMessage]:
    """Pending jobs whose retry time has come: contract jobs (oldest first), then token jobs
    in turns across contracts (`due_token_jobs_in_turns`)."""
    contract_ids = TOKEN_JOBS.lock_due(
        session,
        limit,
        where=Job.smart_contract_id.is_not(None),
        order_by=[func.coalesce(Job.updated_at, Job.created_at)],
    )
    token_ids = due_token_jobs_in_turns(session, ahead, limit - len(contract_ids))
    return mark_queued(session, [*contract_ids, *token_ids])


# Numbered within their contract (tokens never processed first, then oldest), due token jobs
# are taken turn by turn: every contract's first, then every contract's second..., tokens
# never processed before refreshes, a contract's jobs already waiting on the broker counting
# against its turns.
_DUE_TOKEN_JOBS_IN_TURNS = text(
    """
    WITH waiting AS (
        SELECT t.smart_contract_id AS contract_id, count(*) AS queued
        FROM jobs j JOIN tokens t ON t.id = j.token_id
        WHERE j.status = 'queued' AND j.locked_until IS NULL
        GROUP BY t.smart_contract_id
    ), due AS (
        SELECT j.id, t.smart_contract_id AS contract_id, t.updated_at IS NOT NULL AS refresh,
               row_number() OVER (
                   PARTITION BY t.smart_contract_id
                   ORDER BY t.updated_at IS NOT NULL, coalesce(j.updated_at, j.created_at), j.id
               ) AS turn
        FROM jobs j JOIN tokens t ON t.id = j.token_id
        WHERE j.status = 'pending' AND (j.retry_after IS NULL OR j.retry_after <= now())
    )
    SELECT due.id FROM due LEFT JOIN waiting USING (contract_id)
    WHERE due.turn + coalesce(waiting.queued, 0) <= :ahead
    ORDER BY due.refresh, due.turn, due.contract_id
    LIMIT :limit
    """
)


def due_token_jobs_in_turns(session: Session, ahead: int, limit: int) -> list[int]:
    """Up to `limit` due token jobs, contract after contract in turns, each contract topped
    up to `ahead` jobs waiting on the broker; locked (skipping jobs another dispatcher has)."""
    if limit <= 0:
        return []
    ids = list(session.scalars(_DUE_TOKEN_JOBS_IN_TURNS, {"ahead": ahead, "limit": limit}))
    if not ids:
        return []
    locked = TOKEN_JOBS.lock_pending(session, ids)
    return [job_id for job_id in ids if job_id in locked]


def claim_job(session: Session, job_id: int, lease: timedelta) -> ClaimedJob | None:
    """Take a queued job for `lease`; None if it is done, pending again, or held by another."""
    claimed = claim_jobs(session, [job_id], lease)
    return claimed[0] if claimed else None


def claim_jobs(
    session: Session, job_ids: Sequence[int], lease: timedelta, *, tokens_only: bool = False
) -> list[ClaimedJob]:
    """Take those of `job_ids` that are queued and not held by another, in one statement."""
    where = [TOKEN_JOBS.c.token_id.is_not(None)] if tokens_only else []
    c = TOKEN_JOBS.c
    returning = (c.token_id, c.smart_contract_id, c.trigger, c.caused_at)
    rows = TOKEN_JOBS.claim(session, job_ids, lease, returning=returning, where=where)
    return [
        ClaimedJob(r.id, r.token_id, r.smart_contract_id, r.retry_count, r.trigger, r.caused_at)
        for r in rows
    ]


def finish_job(session: Session, job: ClaimedJob, outcome: JobOutcome) -> None:
    """Record the outcome; only while our claim holds (a re-pended job stays pending)."""
    finish_jobs(session, [job], outcome)


def finish_jobs(session: Session, jobs: Sequence[ClaimedJob], outcome: JobOutcome) -> None:
    """Record one outcome for several claimed jobs in one statement. Token jobs that end
    `invalid` get a `metadata_invalid` entry (docs/change-feed.md#kinds)."""
    finished = TOKEN_JOBS.finish(session, [job.id for job in jobs], outcome)
    if outcome.status != JobStatus.INVALID or not finished:
        return
    details = {"reason": outcome.invalid_reason}
    tokens = session.execute(_TOKENS_OF_JOBS, {"ids": joined(finished)})
    record(
        session,
        (
            entry(ChangeKind.METADATA_INVALID, t.principal, int(t.token_number), details=details)
            for t in tokens
        ),
    )


_TOKENS_OF_JOBS = text(
    f"""
    SELECT c.principal, t.token_number
      FROM jobs j JOIN tokens t ON t.id = j.token_id
      JOIN smart_contracts c ON c.id = t.smart_contract_id
     WHERE j.id = ANY({array_of(":ids", "integer")})
     ORDER BY j.id
    """  # noqa: S608 - composed of constant SQL, values are bound
)


def repend_token_jobs(
    session: Session,
    token_ids: Sequence[int],
    statuses: Collection[JobStatus] = FINISHED,
    *,
    running_too: bool = True,
    invalid_after: timedelta | None = None,
    trigger: JobTrigger,
    caused_at: datetime | None = None,
) -> list[int]:
    """Pend these tokens' jobs again (a refresh); returns the ids of those due at once.
    `trigger` and `caused_at` say what made them due (docs/fetch-history.md#triggers).

    Pending jobs, and queued ones waiting for a worker, will fetch anyway and are left
    alone. A job running right now (`running_too`) may have started before the reason for
    the refresh: it becomes pending, due when its lease ends, so its finish changes nothing
    and a fresh run follows. With `invalid_after`, an invalid job is pended only that long
    after it became invalid, so re-mints do not re-fetch an invalid token every time
    (docs/reference-differences.md#re-mints).
    """
    due: list[int] = []
    cause = job_cause(trigger, caused_at)
    for start in range(0, len(token_ids), DISPATCH_CHUNK):
        chunk = list(token_ids[start : start + DISPATCH_CHUNK])
        which = and_(ids_in_column(Job.token_id, chunk), Job.smart_contract_id.is_(None))
        due.extend(
            TOKEN_JOBS.pend_again(
                session,
                which,
                statuses,
                running_too=running_too,
                invalid_after=invalid_after,
                cause=cause,
            )
        )
    return sorted(due)


def job_cause(trigger: JobTrigger, caused_at: datetime | None = None) -> dict[str, Any]:
    """The columns saying what made a token job due."""
    return {"trigger": trigger.value, "caused_at": caused_at}


def repend_contract_job(session: Session, contract_id: int) -> list[int]:
    """Pend a contract's job again (re-enumeration); returns its id if due at once."""
    which = and_(Job.smart_contract_id == contract_id, Job.token_id.is_(None))
    return TOKEN_JOBS.pend_again(session, which)
