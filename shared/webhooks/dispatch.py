"""Beat's webhook dispatcher (docs/webhooks.md#delivery): which subscriptions to deliver to.

One statement: every active subscription whose position is behind the newest entry, whose
next attempt is due and that no delivery holds is marked enqueued and returned, with every
active subscription's lag for the metrics. A subscription marked enqueued is not returned
again until its delivery finishes or RESEND_AFTER_S passed (its message may have been lost
with a flushed Redis): the state is here, so delivery resumes from `last_delivered_id`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

RESEND_AFTER_S = 60.0

_DISPATCH = text(
    """
    WITH latest AS (
        SELECT COALESCE(max(id), 0) AS id FROM changes
    ), active AS (
        SELECT s.id, s.last_delivered_id,
               (SELECT c.at FROM changes c WHERE c.id > s.last_delivered_id
                 ORDER BY c.id LIMIT 1) AS oldest_at,
               (s.next_attempt_at <= now()
                AND (s.lease_until IS NULL OR s.lease_until < now())
                AND (s.enqueued_at IS NULL
                     OR s.enqueued_at < now() - make_interval(secs => :resend_s))) AS ready
          FROM webhook_subscriptions s
         WHERE s.status = 'active'
    ), due AS (
        UPDATE webhook_subscriptions w
           SET enqueued_at = now()
          FROM active a, latest l
         WHERE w.id = a.id AND a.ready AND a.last_delivered_id < l.id
        RETURNING w.id
    )
    SELECT a.id, GREATEST(l.id - a.last_delivered_id, 0) AS behind,
           COALESCE(EXTRACT(EPOCH FROM now() - a.oldest_at), 0) AS age_s,
           a.id IN (SELECT id FROM due) AS due
      FROM active a, latest l
     ORDER BY a.id
    """
)


@dataclass(frozen=True)
class Lag:
    subscription_id: int
    entries: int
    seconds: float


@dataclass(frozen=True)
class Dispatch:
    due: list[int]
    lags: list[Lag]


def due_subscriptions(session: Session, resend_after_s: float = RESEND_AFTER_S) -> Dispatch:
    """Mark the due subscriptions enqueued and return them, with every active one's lag."""
    rows = session.execute(_DISPATCH, {"resend_s": resend_after_s}).all()
    return Dispatch(
        due=[int(row.id) for row in rows if row.due],
        lags=[Lag(int(row.id), int(row.behind), float(row.age_s)) for row in rows],
    )
