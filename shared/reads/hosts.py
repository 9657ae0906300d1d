"""What the admin route `GET /admin/hosts` shows of each metadata host: its adaptive limit,
cap, fetches in flight and rate limit (docs/host-slots.md#adaptive)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.host_slot_keys import KEY_PREFIX as SLOTS_PREFIX
from shared.host_slot_keys import LIMIT_PREFIX
from shared.models import RateLimitedHost


def host_limits(
    session: Session, client: redis.Redis, max_hosts: int = 500
) -> list[dict[str, Any]]:
    """Hosts with an adaptive limit, the most throttled (limit / cap) first."""
    stored = read_limits(client, max_hosts)
    if not stored:
        return []
    names = [entry["host"] for entry in stored]
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zcard(SLOTS_PREFIX + name)
        in_flight = pipe.execute()
    rows = session.execute(
        select(RateLimitedHost.hostname, RateLimitedHost.retry_after).where(
            RateLimitedHost.hostname.in_(names)
        )
    )
    limited = {row.hostname: row.retry_after for row in rows}
    hosts = [
        _host(entry, int(busy), limited.get(entry["host"]))
        for entry, busy in zip(stored, in_flight, strict=True)
    ]
    return sorted(hosts, key=lambda h: (h["limit"] / max(1, h["cap"]), h["host"]))


def _host(entry: dict[str, str], in_flight: int, limited_until: datetime | None) -> dict[str, Any]:
    ceiling = float(entry.get("ceiling") or 0)
    return {
        "host": entry["host"],
        "limit": int(float(entry["limit"])),
        "cap": int(float(entry.get("cap") or entry["limit"])),
        "in_flight": in_flight,
        "last_failed_at_limit": int(ceiling) if ceiling else None,
        "usual_latency_ms": _rounded(entry.get("base_ms")),
        "last_cut_at": _iso(entry.get("last_cut_at")),
        "last_cut_reason": entry.get("reason"),
        "rate_limited_until": limited_until.isoformat() if limited_until else None,
    }


def _rounded(value: str | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _iso(epoch: str | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(float(epoch), UTC).isoformat()


def read_limits(client: redis.Redis, max_hosts: int = 500) -> list[dict[str, str]]:
    """Every host with a limit in Redis (at most `max_hosts`), as stored."""
    keys = []
    for key in client.scan_iter(match=LIMIT_PREFIX + "*", count=500):
        keys.append(key)
        if len(keys) >= max_hosts:
            break
    with client.pipeline(transaction=False) as pipe:  # one round trip, not one per host
        for key in keys:
            pipe.hgetall(key)
        stored = pipe.execute()
    return [
        {
            "host": _text(key).removeprefix(LIMIT_PREFIX),
            **{_text(k): _text(v) for k, v in e.items()},
        }
        for key, e in zip(keys, stored, strict=True)
        if e  # expired between the scan and the read
    ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
