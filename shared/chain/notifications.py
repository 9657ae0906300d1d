"""SIP-019 notifications and the dynamic-token refresh (docs/chain-monitor.md).

Both are a few set-based statements whatever the number of tokens: a contract-wide
notification over 10,000 tokens inserts its rows in one statement and re-pends the jobs in
chunks of a thousand.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from shared.jobs.transitions import repend_token_jobs
from shared.models import JobStatus, JobTrigger
from shared.sql_params import array_of, joined
from shared.stacks.chain_events import Notification

# One row per affected token, skipping tokens whose latest notification froze them (a
# `frozen` notification itself still gets its row and one last refresh).
_INSERT_NOTIFICATIONS = text(
    f"""
    INSERT INTO update_notifications (token_id, update_mode, ttl, block_height,
                                      index_block_hash, tx_id, tx_index, event_index)
    SELECT t.id, CAST(:mode AS token_update_mode), CAST(:ttl AS numeric), :block_height,
           :index_block_hash, :tx_id, :tx_index, :event_index
    FROM tokens t
    JOIN smart_contracts c ON c.id = t.smart_contract_id
    WHERE c.principal = :principal
      AND ({array_of(":token_numbers", "numeric")} IS NULL
           OR t.token_number = ANY({array_of(":token_numbers", "numeric")}))
      AND COALESCE((SELECT n.update_mode FROM update_notifications n WHERE n.token_id = t.id
                    ORDER BY n.block_height DESC, n.tx_index DESC, n.event_index DESC
                    LIMIT 1), 'standard') <> 'frozen'
    ON CONFLICT ON CONSTRAINT update_notifications_token_block_tx_event_unique DO NOTHING
    RETURNING token_id
    """  # noqa: S608 - composed of constant SQL, values are bound
)

# The latest notification of every token that was ever `dynamic`, through the partial index
# on dynamic notifications: `latest.update_mode = 'dynamic'` selects the dynamic tokens.
_LATEST_OF_DYNAMIC_TOKENS = """
    latest AS (
      SELECT DISTINCT ON (n.token_id) n.token_id, n.update_mode, n.ttl
      FROM update_notifications n
      WHERE n.token_id IN (SELECT token_id FROM update_notifications
                           WHERE update_mode = 'dynamic')
      ORDER BY n.token_id, n.block_height DESC, n.tx_index DESC, n.event_index DESC
    )
"""
# Tokens whose latest notification is `dynamic` and whose data is older than its ttl (or the
# default interval). A failed refresh is retried once per interval, not on every block.
_DUE_DYNAMIC_TOKENS = text(
    f"""
    WITH {_LATEST_OF_DYNAMIC_TOKENS}
    SELECT t.id
    FROM latest l
    JOIN tokens t ON t.id = l.token_id
    JOIN jobs j ON j.token_id = t.id AND j.smart_contract_id IS NULL
    WHERE l.update_mode = 'dynamic'
      AND EXTRACT(EPOCH FROM NOW() - COALESCE(t.updated_at, t.created_at))
          > COALESCE(l.ttl, :interval)
      AND (j.status = 'done' OR (j.status = 'failed' AND
           EXTRACT(EPOCH FROM NOW() - COALESCE(j.updated_at, j.created_at))
           > COALESCE(l.ttl, :interval)))
    ORDER BY t.id
    """  # noqa: S608 - composed of constant SQL, values are bound
)
# Dynamic tokens whose data is older than their ttl plus `grace` and whose refresh has not
# ended yet: not pended yet (`done`), or waiting for a worker or running (`pending`,
# `queued`). A refresh that failed or was invalid ended; the failure counts elsewhere
# (docs/freshness.md#dynamic-tokens-overdue).
_OVERDUE_DYNAMIC_TOKENS = text(
    f"""
    WITH {_LATEST_OF_DYNAMIC_TOKENS}
    SELECT count(*)
    FROM latest l
    JOIN tokens t ON t.id = l.token_id
    JOIN jobs j ON j.token_id = t.id AND j.smart_contract_id IS NULL
    WHERE l.update_mode = 'dynamic'
      AND j.status IN ('pending', 'queued', 'done')
      AND EXTRACT(EPOCH FROM NOW() - COALESCE(t.updated_at, t.created_at))
          > COALESCE(l.ttl, :interval) + :grace
    """  # noqa: S608 - composed of constant SQL, values are bound
)


def apply_notification(
    session: Session, notification: Notification, block_time: datetime | None = None
) -> list[int]:
    """Record the notification for each affected token and re-pend their jobs; returns the
    job ids to dispatch after the commit. An unknown contract affects nothing. `block_time`
    is the notification's block's: the start of its freshness (docs/fetch-history.md)."""
    update, position = notification.update, notification.position
    token_ids = session.scalars(
        _INSERT_NOTIFICATIONS,
        {
            "principal": update.contract_id,
            "token_numbers": joined(update.token_ids) if update.token_ids else None,
            "mode": update.update_mode.value,
            "ttl": update.ttl,
            "block_height": position.block_height,
            "index_block_hash": position.index_block_hash,
            "tx_id": position.tx_id,
            "tx_index": position.tx_index,
            "event_index": position.event_index,
        },
    ).all()
    return repend_token_jobs(
        session, sorted(token_ids), trigger=JobTrigger.NOTIFICATION, caused_at=block_time
    )


def refresh_dynamic_tokens(session: Session, default_interval_s: int) -> list[int]:
    """Re-pend every due dynamic token, any number of them (a set-based query; see
    docs/reference-differences.md#dynamic-refresh); returns job ids."""
    due = session.scalars(_DUE_DYNAMIC_TOKENS, {"interval": default_interval_s}).all()
    finished = (JobStatus.DONE, JobStatus.FAILED)
    return repend_token_jobs(
        session, list(due), finished, running_too=False, trigger=JobTrigger.DYNAMIC
    )


def count_overdue_dynamic_tokens(
    conn: Connection | Session, default_interval_s: int, grace_s: float
) -> int:
    """Dynamic tokens still waiting for a refresh `grace_s` after it was due."""
    params = {"interval": default_interval_s, "grace": grace_s}
    return int(conn.execute(_OVERDUE_DYNAMIC_TOKENS, params).scalar_one())
