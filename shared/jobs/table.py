"""The job state machine, written once for every job table (`jobs`, `image_jobs`).

pending -> queued -> done | failed | invalid, with a lease while a worker runs the job
(docs/job-engine.md#statuses). Each transition is one conditional UPDATE, so a message
delivered twice, a worker that outlived its lease, or two dispatchers at once change nothing
they should not. The job kinds add what is theirs (which columns a claim returns, how due
jobs are ordered) through the arguments; the rules live here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Table,
    and_,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from shared.models import ImageJob, Job, JobStatus
from shared.sql_params import any_of

FINISHED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.INVALID)


@dataclass(frozen=True)
class JobOutcome:
    """How a run ended. `pending` comes back later: after `retry_after_s`, spending a retry
    unless `uses_retry` is False (a deferral: the host was busy, or our own outage)."""

    status: JobStatus
    invalid_reason: int | None = None
    retry_after_s: float | None = None
    error: str | None = None
    uses_retry: bool = True


def deferral(delay_s: float) -> JobOutcome:
    """Pending again after `delay_s` without spending a retry: the job was not at fault."""
    return JobOutcome(JobStatus.PENDING, retry_after_s=delay_s, uses_retry=False)


@dataclass(frozen=True)
class Reaped:
    expired_leases: int
    lost_messages: int


@dataclass(frozen=True)
class JobTable:
    """The transitions of one job table; `TOKEN_JOBS` and `IMAGE_JOBS` below."""

    table: Table

    @property
    def c(self) -> Any:
        return self.table.c

    def ids_in(self, job_ids: Sequence[int]) -> ColumnElement[bool]:
        return ids_in_column(self.c.id, job_ids)

    def is_running(self) -> ColumnElement[bool]:
        return and_(self.c.status == JobStatus.QUEUED, self.c.locked_until > func.now())

    def is_due(self) -> ColumnElement[bool]:
        return and_(
            self.c.status == JobStatus.PENDING,
            or_(self.c.retry_after.is_(None), self.c.retry_after <= func.now()),
        )

    def lock_due(
        self,
        session: Session,
        limit: int,
        *,
        order_by: Sequence[Any],
        where: ColumnElement[bool] | None = None,
    ) -> list[int]:
        """Up to `limit` due jobs in `order_by`, locked for this transaction; jobs another
        dispatcher holds are skipped."""
        statement = select(self.c.id).where(self.is_due())
        if where is not None:
            statement = statement.where(where)
        statement = statement.order_by(*order_by).limit(limit)
        return list(session.scalars(statement.with_for_update(skip_locked=True)))

    def lock_pending(self, session: Session, job_ids: Sequence[int]) -> set[int]:
        """Those of `job_ids` still pending, locked; jobs another dispatcher holds skipped."""
        statement = select(self.c.id).where(
            self.ids_in(job_ids), self.c.status == JobStatus.PENDING
        )
        return set(session.scalars(statement.with_for_update(skip_locked=True)))

    def count_queued(self, session: Session) -> int:
        """Jobs queued: waiting on the broker or running."""
        count = (
            select(func.count()).select_from(self.table).where(self.c.status == JobStatus.QUEUED)
        )
        return int(session.scalar(count) or 0)

    def mark_queued(
        self, session: Session, job_ids: Sequence[int], returning: Sequence[Any] = ()
    ) -> Sequence[Row[Any]]:
        """pending -> queued; the caller sends the messages after its commit. A lease left
        from before the job was pended again is over: the job was due only after it."""
        return session.execute(
            update(self.table)
            .where(self.ids_in(job_ids), self.c.status == JobStatus.PENDING)
            .values(status=JobStatus.QUEUED, locked_until=None, updated_at=func.now())
            .returning(self.c.id, *returning)
        ).all()

    def claim(
        self,
        session: Session,
        job_ids: Sequence[int],
        lease: timedelta,
        *,
        returning: Sequence[Any] = (),
        where: Sequence[ColumnElement[bool]] = (),
    ) -> Sequence[Row[Any]]:
        """Take those of `job_ids` that are queued and not held by another, for `lease`.
        Returns the id, the retry count and the new `locked_until` (the claim's token)."""
        return session.execute(
            update(self.table)
            .where(self.ids_in(job_ids), self.c.status == JobStatus.QUEUED, *where)
            .where(or_(self.c.locked_until.is_(None), self.c.locked_until < func.now()))
            .values(locked_until=func.now() + lease, updated_at=func.now())
            .returning(self.c.id, self.c.retry_count, self.c.locked_until, *returning)
        ).all()

    def renew(self, session: Session, job_ids: Sequence[int], lease: timedelta) -> int:
        """Extend the leases of running jobs; returns how many still run."""
        result = session.execute(
            update(self.table)
            .where(self.ids_in(job_ids), self.c.status == JobStatus.QUEUED)
            .values(locked_until=func.now() + lease)
        )
        return _count(result)

    def finish(
        self,
        session: Session,
        job_ids: Sequence[int],
        outcome: JobOutcome,
        *,
        claim: datetime | None = None,
    ) -> list[int]:
        """Record `outcome` for jobs still queued (a job pended again meanwhile stays
        pending); with `claim`, only while that exact claim holds. Returns the jobs written."""
        if not job_ids:
            return []
        statement = (
            update(self.table)
            .where(self.ids_in(job_ids), self.c.status == JobStatus.QUEUED)
            .values(**self._ending(outcome))
            .returning(self.c.id)
        )
        if claim is not None:
            statement = statement.where(self.c.locked_until == claim)
        return list(session.scalars(statement))

    def _ending(self, outcome: JobOutcome) -> dict[str, Any]:
        values: dict[str, Any] = {
            "status": outcome.status,
            "locked_until": None,
            "updated_at": func.now(),
            "retry_after": None,
            "retry_count": 0,
        }
        if outcome.status == JobStatus.PENDING:
            values["retry_after"] = func.now() + timedelta(seconds=outcome.retry_after_s or 0)
            values["retry_count"] = self.c.retry_count + (1 if outcome.uses_retry else 0)
            if not outcome.uses_retry:  # a deferral keeps the last real error on record
                return values
        values["invalid_reason"] = outcome.invalid_reason
        values["last_error"] = outcome.error[:2000] if outcome.error else None
        return values

    def pend_again(
        self,
        session: Session,
        which: ColumnElement[bool],
        statuses: Collection[JobStatus] = FINISHED,
        *,
        running_too: bool = True,
        invalid_after: timedelta | None = None,
        cause: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Pend jobs again (a refresh); returns the ids of those due at once.

        Pending jobs, and queued ones waiting for a worker, will run anyway and are left
        alone. A job running now (`running_too`) may have started before the reason for the
        refresh: it becomes pending, due when its lease ends, so its finish changes nothing
        and a fresh run follows. With `invalid_after`, an invalid job is pended only that
        long after it became invalid. `cause` adds columns to set (a token job's trigger).
        """
        eligible: ColumnElement[bool] = self.c.status.in_(list(statuses))
        if running_too:
            eligible = or_(eligible, self.is_running())
        if invalid_after is not None:
            recent = and_(
                self.c.status == JobStatus.INVALID, self.c.updated_at >= func.now() - invalid_after
            )
            eligible = and_(eligible, ~recent)
        rows = session.execute(
            update(self.table)
            .where(which, eligible)
            .values(**self.pending_again_values(fresh=False), **(cause or {}))
            .returning(self.c.id, self.c.retry_after.is_(None).label("due"))
        ).all()
        return [row.id for row in rows if row.due]

    def pending_again_values(self, *, fresh: bool) -> dict[str, Any]:
        """The values of a job pended again; a running one is due when its lease ends.
        `fresh` also clears its retries and last error (a new start, not a refresh)."""
        values: dict[str, Any] = {
            "status": JobStatus.PENDING,
            "updated_at": func.now(),
            "retry_after": case((self.is_running(), self.c.locked_until), else_=None),
        }
        if fresh:
            values.update(retry_count=0, invalid_reason=None, last_error=None)
        return values

    def restart_ended(
        self,
        session: Session,
        statuses: Collection[JobStatus],
        cause: Mapping[str, Any] | None = None,
    ) -> int:
        """Every job in `statuses` back to pending with a fresh retry budget, due now."""
        result = session.execute(
            update(self.table)
            .where(self.c.status.in_(list(statuses)))
            .values(
                status=JobStatus.PENDING,
                retry_count=0,
                retry_after=None,
                updated_at=func.now(),
                **(cause or {}),
            )
        )
        return _count(result)

    def reap(self, session: Session, broker_reset: bool, stale_after: timedelta) -> Reaped:
        """queued -> pending for jobs nothing will run: their worker's lease ran out, or their
        message is gone (the broker came back empty, or nobody claimed it for `stale_after`)."""
        expired = session.execute(
            self._back_to_pending(
                and_(self.c.locked_until.is_not(None), self.c.locked_until < func.now())
            )
        )
        unclaimed = self._unclaimed(None if broker_reset else stale_after)
        lost = session.execute(self._back_to_pending(unclaimed))
        return Reaped(_count(expired), _count(lost))

    def unclaimed_for(self, session: Session, older_than: timedelta, limit: int) -> list[int]:
        """Queued jobs nobody claimed since `older_than` ago (at most `limit`, unordered: the
        rest are found by the next look)."""
        query = (
            select(self.c.id)
            .where(self.c.status == JobStatus.QUEUED, self._unclaimed(older_than))
            .limit(limit)
        )
        return list(session.scalars(query))

    def unqueue_unclaimed(
        self, session: Session, job_ids: Sequence[int], older_than: timedelta | None = None
    ) -> int:
        """queued -> pending for those of `job_ids` no worker has claimed (their message may
        never have been sent, or was lost), and still untouched since `older_than` ago."""
        if not job_ids:
            return 0
        unclaimed = and_(self.ids_in(job_ids), self._unclaimed(older_than))
        return _count(session.execute(self._back_to_pending(unclaimed)))

    def _unclaimed(self, older_than: timedelta | None) -> ColumnElement[bool]:
        unclaimed: ColumnElement[bool] = self.c.locked_until.is_(None)
        if older_than is None:
            return unclaimed
        last_touched = func.coalesce(self.c.updated_at, self.c.created_at)
        return and_(unclaimed, last_touched < func.now() - older_than)

    def _back_to_pending(self, which: ColumnElement[bool]) -> Any:
        return (
            update(self.table)
            .where(self.c.status == JobStatus.QUEUED, which)
            .values(status=JobStatus.PENDING, locked_until=None, updated_at=func.now())
        )


def ids_in_column(column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column = ANY(ids)`, the ids bound the one way lists are (docs/sql.md#lists-and-rows)."""
    return cast(ColumnElement[bool], column == any_of("ids", ids, Integer))


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


TOKEN_JOBS = JobTable(cast(Table, Job.__table__))
IMAGE_JOBS = JobTable(cast(Table, ImageJob.__table__))
