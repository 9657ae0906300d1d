"""Webhook subscriptions: create, list, pause, resume, delete, and their recent deliveries
(docs/webhooks.md#subscriptions). Plain SQL on the caller's session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

# Attempts kept per subscription for `GET .../deliveries`.
DELIVERIES_KEPT = 200
DELIVERIES_SHOWN = 50

_COLUMNS = """id, url, contracts, kinds, CAST(status AS text) AS status, paused_reason,
              last_delivered_id, attempts, last_error, failing_since, next_attempt_at,
              created_at, updated_at"""
# A new subscription receives the entries committed after it was created (ids are allocated
# in commit order, docs/change-feed.md#ordering), unless it names an `after` of its own.
_CREATE = text(
    f"""
    INSERT INTO webhook_subscriptions (url, secret, contracts, kinds, last_delivered_id,
                                       sent_through)
    SELECT :url, :secret, :contracts, :kinds, s.after, s.after
      FROM (SELECT COALESCE(CAST(:after AS bigint), (SELECT max(id) FROM changes), 0) AS after) s
    RETURNING {_COLUMNS}
    """  # noqa: S608 - composed of constant SQL, values are bound
)
_LIST = text(f"SELECT {_COLUMNS} FROM webhook_subscriptions ORDER BY id")  # noqa: S608
_GET = text(f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE id = :id")  # noqa: S608
_PAUSE = text(
    f"""
    UPDATE webhook_subscriptions
       SET status = 'paused', paused_reason = :reason, updated_at = now()
     WHERE id = :id
    RETURNING {_COLUMNS}
    """  # noqa: S608 - composed of constant SQL, values are bound
)
_RESUME = text(
    f"""
    UPDATE webhook_subscriptions
       SET status = 'active', paused_reason = NULL, attempts = 0, failing_since = NULL,
           next_attempt_at = now(), updated_at = now()
     WHERE id = :id
    RETURNING {_COLUMNS}
    """  # noqa: S608 - composed of constant SQL, values are bound
)
_DELETE = text("DELETE FROM webhook_subscriptions WHERE id = :id RETURNING id")
_DELIVERIES = text(
    """
    SELECT id, first_id, last_id, entries, attempted_at, status_code,
           CAST(outcome AS text) AS outcome, error, duration_ms
      FROM webhook_deliveries
     WHERE subscription_id = :id
     ORDER BY id DESC
     LIMIT :limit
    """
)

PAUSED_BY_ADMIN = "Paused by an administrator"


def create_subscription(
    session: Session,
    url: str,
    secret: str,
    contracts: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    after: int | None = None,
) -> dict[str, Any]:
    row = session.execute(
        _CREATE,
        {
            "url": url,
            "secret": secret,
            "contracts": list(dict.fromkeys(contracts)) if contracts else None,
            "kinds": list(dict.fromkeys(kinds)) if kinds else None,
            "after": after,
        },
    ).one()
    return view(row)


def list_subscriptions(session: Session) -> list[dict[str, Any]]:
    return [view(row) for row in session.execute(_LIST)]


def get_subscription(session: Session, subscription_id: int) -> dict[str, Any] | None:
    row = session.execute(_GET, {"id": subscription_id}).one_or_none()
    return None if row is None else view(row)


def pause_subscription(
    session: Session, subscription_id: int, reason: str = PAUSED_BY_ADMIN
) -> dict[str, Any] | None:
    row = session.execute(_PAUSE, {"id": subscription_id, "reason": reason}).one_or_none()
    return None if row is None else view(row)


def resume_subscription(session: Session, subscription_id: int) -> dict[str, Any] | None:
    """Active again, its failure count reset: the next dispatch delivers from its position."""
    row = session.execute(_RESUME, {"id": subscription_id}).one_or_none()
    return None if row is None else view(row)


def delete_subscription(session: Session, subscription_id: int) -> bool:
    return session.execute(_DELETE, {"id": subscription_id}).one_or_none() is not None


def recent_deliveries(
    session: Session, subscription_id: int, limit: int = DELIVERIES_SHOWN
) -> list[dict[str, Any]]:
    """The newest attempts first."""
    rows = session.execute(_DELIVERIES, {"id": subscription_id, "limit": limit})
    return [
        {
            "id": row.id,
            "first_id": row.first_id,
            "last_id": row.last_id,
            "entries": row.entries,
            "attempted_at": _iso(row.attempted_at),
            "status_code": row.status_code,
            "outcome": row.outcome,
            "error": row.error,
            "duration_ms": row.duration_ms,
        }
        for row in rows
    ]


def view(row: Any) -> dict[str, Any]:
    """A subscription as the admin routes show it: never its secret."""
    return {
        "id": row.id,
        "url": row.url,
        "contracts": row.contracts,
        "kinds": row.kinds,
        "status": row.status,
        "paused_reason": row.paused_reason,
        "last_delivered_id": row.last_delivered_id,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "failing_since": _iso(row.failing_since),
        "next_attempt_at": _iso(row.next_attempt_at),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
