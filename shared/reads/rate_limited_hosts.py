"""Hosts that answered 429 and are left alone until a time (`rate_limited_hosts`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

TOP = 20

# The table is small (one row per host that ever answered 429; workers forget expired ones).
_LIMITED = text(
    """
    SELECT hostname, retry_after, COUNT(*) OVER () AS total,
           EXTRACT(EPOCH FROM retry_after - NOW()) AS seconds_left
    FROM rate_limited_hosts WHERE retry_after > NOW()
    ORDER BY retry_after DESC, hostname LIMIT :top
    """
)


@dataclass(frozen=True)
class RateLimitedHost:
    hostname: str
    until: datetime
    seconds_left: float


@dataclass(frozen=True)
class RateLimitedHosts:
    total: int
    hosts: list[RateLimitedHost]  # the `top` latest to expire


def read_rate_limited_hosts(session: Session, top: int = TOP) -> RateLimitedHosts:
    rows = session.execute(_LIMITED, {"top": top}).all()
    hosts = [
        RateLimitedHost(row.hostname, row.retry_after, float(row.seconds_left)) for row in rows
    ]
    return RateLimitedHosts(int(rows[0].total) if rows else 0, hosts)
