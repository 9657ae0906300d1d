"""Hosts that answered 429: remembered with their `Retry-After`, skipped until then (4.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from shared.db import session_scope
from shared.errors import RetryableJobError, TooManyRequestsError
from shared.models import RateLimitedHost


class RateLimitedHosts:
    """The gate a metadata fetch passes first; it costs one indexed lookup."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def check(self, hostname: str) -> None:
        """Raise RetryableJobError (no network call) while `hostname` is rate limited."""
        now = datetime.now(UTC)
        with session_scope(self.sessions) as session:
            until = session.scalar(
                select(RateLimitedHost.retry_after).where(RateLimitedHost.hostname == hostname)
            )
            if until is None:
                return
            if until <= now:
                session.execute(delete(RateLimitedHost).where(RateLimitedHost.hostname == hostname))
                return
        raise RetryableJobError(
            f"skipping fetch to rate-limited hostname {hostname}",
            retry_after_s=(until - now).total_seconds(),
        )


def remember_rate_limited_host(
    session: Session, exc: TooManyRequestsError, default_retry_after_s: float
) -> None:
    seconds = exc.retry_after_s or default_retry_after_s
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    session.execute(
        insert(RateLimitedHost)
        .values(hostname=exc.hostname, retry_after=until)
        .on_conflict_do_update(
            index_elements=[RateLimitedHost.hostname], set_={"retry_after": until}
        )
    )
