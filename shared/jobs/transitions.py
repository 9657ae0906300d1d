"""The job state machine in Postgres: pending -> queued -> done | failed | invalid.

A message on the broker only says "look at job N". Claiming is a conditional UPDATE, so a
message delivered twice, or to two workers, is processed once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from shared.errors import InvalidReason
from shared.models import Job, JobStatus, Token
from shared.queues import JobMessage

DISPATCH_CHUNK = 1000
# Claims and finishes run per batch on every worker: on the table (SQLAlchemy Core) they skip
# the ORM's bulk-update machinery, 7 % of a worker's CPU in a profile.
_JOBS_TABLE = cast(Table, Job.__table__)
_JOBS = _JOBS_TABLE.c


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    token_id: int | None
    smart_contract_id: int | None
    retry_count: int


@dataclass(frozen=True)
class JobOutcome:
    status: JobStatus
    invalid_reason: InvalidReason | None = None
    retry_after_s: float | None = None
    error: str | None = None


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
        rows = session.execute(
            update(Job)
            .where(Job.id == func.any(bindparam("ids", chunk, type_=ARRAY(Integer))))
            .where(Job.status == JobStatus.PENDING)
            .values(status=JobStatus.QUEUED, updated_at=func.now())
            .returning(Job.id, Job.smart_contract_id, processed_before.label("refresh"))
        ).all()
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
    contracts = (
        select(Job.id)
        .where(Job.status == JobStatus.PENDING, Job.smart_contract_id.is_not(None))
        .where(or_(Job.retry_after.is_(None), Job.retry_after <= func.now()))
        .order_by(func.coalesce(Job.updated_at, Job.created_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    contract_ids = list(session.scalars(contracts).all())
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
    locked = set(
        session.scalars(
            select(Job.id)
            .where(Job.id == func.any(bindparam("ids", ids, type_=ARRAY(Integer))))
            .where(Job.status == JobStatus.PENDING)
            .with_for_update(skip_locked=True)
        )
    )
    return [job_id for job_id in ids if job_id in locked]


def claim_job(session: Session, job_id: int, lease: timedelta) -> ClaimedJob | None:
    """Take a queued job for `lease`; None if it is done, pending again, or held by another."""
    claimed = claim_jobs(session, [job_id], lease)
    return claimed[0] if claimed else None


def claim_jobs(
    session: Session, job_ids: Sequence[int], lease: timedelta, *, tokens_only: bool = False
) -> list[ClaimedJob]:
    """Take those of `job_ids` that are queued and not held by another, in one statement."""
    statement = (
        update(_JOBS_TABLE)
        .where(_JOBS.id == func.any(bindparam("ids", list(job_ids), type_=ARRAY(Integer))))
        .where(_JOBS.status == JobStatus.QUEUED)
        .where(or_(_JOBS.locked_until.is_(None), _JOBS.locked_until < func.now()))
        .values(locked_until=func.now() + lease, updated_at=func.now())
        .returning(_JOBS.id, _JOBS.token_id, _JOBS.smart_contract_id, _JOBS.retry_count)
    )
    if tokens_only:
        statement = statement.where(_JOBS.token_id.is_not(None))
    rows = session.execute(statement).all()
    return [ClaimedJob(r.id, r.token_id, r.smart_contract_id, r.retry_count) for r in rows]


def finish_job(session: Session, job: ClaimedJob, outcome: JobOutcome) -> None:
    """Record the outcome; only while our claim holds (a re-pended job stays pending)."""
    finish_jobs(session, [job], outcome)


def finish_jobs(session: Session, jobs: Sequence[ClaimedJob], outcome: JobOutcome) -> None:
    """Record one outcome for several claimed jobs in one statement."""
    if not jobs:
        return
    values: dict[str, object] = {
        "status": outcome.status,
        "invalid_reason": int(outcome.invalid_reason) if outcome.invalid_reason else None,
        "locked_until": None,
        "updated_at": func.now(),
        "last_error": outcome.error[:2000] if outcome.error else None,
    }
    if outcome.status == JobStatus.PENDING:
        values["retry_count"] = _JOBS.retry_count + 1
        values["retry_after"] = func.now() + timedelta(seconds=outcome.retry_after_s or 0)
    else:
        values["retry_count"] = 0
        values["retry_after"] = None
    ids = [job.id for job in jobs]
    session.execute(
        update(_JOBS_TABLE)
        .where(_JOBS.id == func.any(bindparam("ids", ids, type_=ARRAY(Integer))))
        .where(_JOBS.status == JobStatus.QUEUED)
        .values(**values)
    )


FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.INVALID)


def repend_token_jobs(
    session: Session,
    token_ids: Sequence[int],
    statuses: Collection[JobStatus] = FINISHED,
    *,
    running_too: bool = True,
    invalid_after: timedelta | None = None,
) -> list[int]:
    """Pend these tokens' jobs again (a refresh); returns the ids of those due at once.

    Pending jobs, and queued ones waiting for a worker, will fetch anyway and are left
    alone. A job running right now (`running_too`) may have started before the reason for
    the refresh: it becomes pending, due when its lease ends, so its finish changes nothing
    and a fresh run follows. With `invalid_after`, an invalid job is pended only that long
    after it became invalid, so re-mints do not re-fetch an invalid token every time
    (docs/reference-differences.md#re-mints).
    """
    due: list[int] = []
    for start in range(0, len(token_ids), DISPATCH_CHUNK):
        chunk = list(token_ids[start : start + DISPATCH_CHUNK])
        which = and_(
            Job.token_id == func.any(bindparam("ids", chunk, type_=ARRAY(Integer))),
            Job.smart_contract_id.is_(None),
        )
        due.extend(_repend(session, which, statuses, running_too, invalid_after))
    return sorted(due)


def repend_contract_job(session: Session, contract_id: int) -> list[int]:
    """Pend a contract's job again (re-enumeration); returns its id if due at once."""
    which = and_(Job.smart_contract_id == contract_id, Job.token_id.is_(None))
    return _repend(session, which, FINISHED, True, None)


def _repend(
    session: Session,
    which: ColumnElement[bool],
    statuses: Collection[JobStatus],
    running_too: bool,
    invalid_after: timedelta | None,
) -> list[int]:
    eligible: ColumnElement[bool] = Job.status.in_(list(statuses))
    if running_too:
        eligible = or_(
            eligible, and_(Job.status == JobStatus.QUEUED, Job.locked_until > func.now())
        )
    if invalid_after is not None:
        recent = and_(Job.status == JobStatus.INVALID, Job.updated_at >= func.now() - invalid_after)
        eligible = and_(eligible, ~recent)
    rows = session.execute(
        update(Job)
        .where(which, eligible)
        .values(
            status=JobStatus.PENDING,
            updated_at=func.now(),
            retry_after=case((Job.status == JobStatus.QUEUED, Job.locked_until), else_=None),
        )
        .returning(Job.id, Job.retry_after.is_(None).label("due"))
        .execution_options(synchronize_session=False)
    ).all()
    return [row.id for row in rows if row.due]
