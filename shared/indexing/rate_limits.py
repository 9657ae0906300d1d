"""Hosts that answered 429: remembered with their `Retry-After`, skipped until then.

See docs/token-processing.md#rate-limits.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from shared.db import session_scope
from shared.errors import HostRateLimitedError, TooManyRequestsError
from shared.models import RateLimitedHost


class RateLimitedHosts:
    """The gate a metadata fetch passes first.

    The table of rate-limited hosts is small; each process reads all of it at most once per
    `refresh_s` (forgetting expired rows as it goes) instead of once per fetch, and learns a
    429 of its own at once through `note`. Another worker's 429 is seen within `refresh_s`.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        default_retry_after_s: float = 60.0,
        refresh_s: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.default_retry_after_s = default_retry_after_s
        self.refresh_s = refresh_s
        self._hosts: dict[str, datetime] = {}
        self._read_at = -math.inf
        self._lock = threading.Lock()
        # One thread re-reads the table; the others go on with the snapshot they have (a
        # profile caught dozens of fetch threads re-reading it at the same moment).
        self._refreshing = threading.Lock()

    def check(self, hostname: str) -> None:
        """Raise HostRateLimitedError (no network call) while `hostname` is rate limited."""
        now = datetime.now(UTC)
        until = self._snapshot().get(hostname)
        if until is None or until <= now:
            return
        raise HostRateLimitedError(hostname, (until - now).total_seconds())

    def note(self, hostname: str, retry_after_s: float | None) -> None:
        """This process saw a 429: skip the host from now on (the job records it for others)."""
        seconds = retry_after_s or self.default_retry_after_s
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        with self._lock:
            self._hosts[hostname] = max(until, self._hosts.get(hostname, until))

    def _snapshot(self) -> dict[str, datetime]:
        with self._lock:
            if time.monotonic() - self._read_at < self.refresh_s:
                return self._hosts
        if not self._refreshing.acquire(blocking=self._read_at == -math.inf):
            with self._lock:
                return self._hosts
        try:
            return self._refresh()
        finally:
            self._refreshing.release()

    def _refresh(self) -> dict[str, datetime]:
        with self._lock:  # another thread may have refreshed while this one waited
            if time.monotonic() - self._read_at < self.refresh_s:
                return self._hosts
        with session_scope(self.sessions) as session:
            hosts = {row.hostname: row.retry_after for row in session.execute(_READ_AND_FORGET)}
        with self._lock:
            now = datetime.now(UTC)
            noted = {h: until for h, until in self._hosts.items() if until > now}
            self._hosts = {**noted, **hosts}
            self._read_at = time.monotonic()
            return self._hosts


# One statement, plain SQL: every worker runs it every `refresh_s`, and the ORM's bulk delete
# and select cost more than the read itself.
_READ_AND_FORGET = text(
    """
    WITH expired AS (DELETE FROM rate_limited_hosts WHERE retry_after <= NOW())
    SELECT hostname, retry_after FROM rate_limited_hosts WHERE retry_after > NOW()
    """
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
