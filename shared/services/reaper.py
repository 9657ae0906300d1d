"""Finds queued jobs that nothing will ever run and makes them pending again.

Three ways a queued job gets stranded: its worker died mid-job (the lease runs out), Redis
lost its messages (flush, or a restart without persistence: noticed by a marker key that
disappears with them), or one message was lost between the commit and the send (covered
by a generous staleness limit). Re-queuing is always safe: claims make duplicates no-ops.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy import Update, func, update
from sqlalchemy.orm import Session

from shared.models import Job, JobStatus

BROKER_MARKER_KEY = "token-metadata:broker-marker"


@dataclass(frozen=True)
class Reaped:
    expired_leases: int
    lost_messages: int


def broker_lost_its_data(client: redis.Redis) -> bool:
    """True once after Redis came back empty; sets the marker for next time."""
    return bool(client.set(BROKER_MARKER_KEY, uuid.uuid4().hex, nx=True))


def reap_stranded_jobs(session: Session, broker_reset: bool, stale_after: timedelta) -> Reaped:
    """queued -> pending for dead workers' jobs and jobs whose message is gone."""
    expired = session.execute(
        _back_to_pending().where(Job.locked_until.is_not(None)).where(Job.locked_until < func.now())
    )
    unclaimed = _back_to_pending().where(Job.locked_until.is_(None))
    if not broker_reset:
        stale = func.coalesce(Job.updated_at, Job.created_at) < func.now() - stale_after
        unclaimed = unclaimed.where(stale)
    lost = session.execute(unclaimed)
    return Reaped(_count(expired), _count(lost))


def _back_to_pending() -> Update:
    return (
        update(Job)
        .where(Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.PENDING, locked_until=None, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
