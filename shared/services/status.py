"""The status route's figures: chain tip and counts of tokens, contracts and jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_STATUS_QUERY = text(
    """
    SELECT 'chain_tip' AS kind, block_height::text AS key, index_block_hash AS value
      FROM chain_tip
    UNION ALL
    SELECT 'tokens', type::text, COUNT(*)::text FROM tokens GROUP BY type
    UNION ALL
    SELECT 'token_contracts', sip::text, COUNT(*)::text FROM smart_contracts GROUP BY sip
    UNION ALL
    SELECT 'job_queue', status::text, COUNT(*)::text FROM jobs GROUP BY status
    """
)


def service_status(session: Session) -> dict[str, Any]:
    """Counts appear only for values present in the database (no zero entries)."""
    status: dict[str, Any] = {"chain_tip": {"block_height": 1}}
    for kind, key, value in session.execute(_STATUS_QUERY).all():
        if kind == "chain_tip":
            status["chain_tip"] = {"block_height": int(key)}
            if value:
                status["chain_tip"]["index_block_hash"] = value
        else:
            status.setdefault(kind, {})[key] = int(value)
    return status
