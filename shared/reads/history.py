"""What the history routes answer: a token's job as it stands and its newest fetch attempts
(docs/fetch-history.md#routes).

Not found as the detail routes say it (`shared.reads.tokens.get_token`): no contract of that
principal, then no such token or no job for it. An invalid token or contract still answers:
its history says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.models import TokenUpdateMode
from shared.reads.tokens import ContractNotFound, RowSource, TokenNotFound

# As many as the writer keeps (`shared.indexing.fetch_history.FETCH_ATTEMPTS_KEPT`; a test
# checks they agree), so a read between a write and its pruning still shows that many.
ATTEMPTS_SHOWN = 20

# The token's job, its latest notification's mode and ttl, and how long the host of its
# newest metadata fetch is left alone (docs/token-processing.md#rate-limits).
_JOB_SQL = """
    SELECT t.id AS token_id, t.updated_at, t.created_at,
           j.id AS job_id, CAST(j.status AS text) AS status, j.retry_count, j.retry_after,
           CAST(n.update_mode AS text) AS update_mode, n.ttl,
           (SELECT r.retry_after FROM rate_limited_hosts r
             WHERE r.hostname = lower(substring(a.url FROM '^[a-zA-Z]+://([^/:?#]+)'))
               AND r.retry_after > now()) AS host_rate_limited_until
      FROM smart_contracts c
      LEFT JOIN tokens t
          ON t.smart_contract_id = c.id AND t.token_number = CAST(%(token_number)s AS numeric)
      LEFT JOIN LATERAL (
          SELECT j.* FROM jobs j
           WHERE j.token_id = t.id AND j.smart_contract_id IS NULL LIMIT 1) j ON true
      LEFT JOIN LATERAL (
          SELECT n.update_mode, n.ttl FROM update_notifications n WHERE n.token_id = t.id
           ORDER BY n.block_height DESC, n.tx_index DESC, n.event_index DESC LIMIT 1) n ON true
      LEFT JOIN LATERAL (
          SELECT a.url FROM fetch_attempts a
           WHERE a.token_id = t.id AND a.kind = 'metadata' AND a.url IS NOT NULL
           ORDER BY a.id DESC LIMIT 1) a ON true
     WHERE c.principal = %(principal)s
"""
_ATTEMPTS_SQL = """
    SELECT at, kind, trigger, url, http_status, bytes, duration_ms, outcome, reason_code
      FROM fetch_attempts WHERE token_id = %(token_id)s ORDER BY id DESC LIMIT %(limit)s
"""
ATTEMPT_FIELDS = (
    "kind",
    "trigger",
    "url",
    "http_status",
    "bytes",
    "duration_ms",
    "outcome",
    "reason_code",
)


@dataclass(frozen=True)
class TokenHistory:
    job: dict[str, Any]
    attempts: list[dict[str, Any]]


def get_token_history(
    source: RowSource, principal: str, token_number: int, dynamic_interval_s: int
) -> TokenHistory:
    """The token's job and attempts, newest first; ContractNotFound or TokenNotFound.
    `dynamic_interval_s` (METADATA_DYNAMIC_TOKEN_REFRESH_INTERVAL) dates a dynamic token's
    next refresh when its notification set no ttl."""
    row = source.one(_JOB_SQL, {"principal": principal, "token_number": token_number})
    if row is None:
        raise ContractNotFound
    if row.token_id is None or row.job_id is None:
        raise TokenNotFound
    attempts = source.all(_ATTEMPTS_SQL, {"token_id": row.token_id, "limit": ATTEMPTS_SHOWN})
    return TokenHistory(_job(row, dynamic_interval_s), [_attempt(a) for a in attempts])


def _job(row: Any, dynamic_interval_s: int) -> dict[str, Any]:
    mode = row.update_mode or TokenUpdateMode.STANDARD.value
    next_refresh: datetime | None = None
    if mode == TokenUpdateMode.DYNAMIC.value:
        seconds = float(row.ttl) if row.ttl is not None else float(dynamic_interval_s)
        next_refresh = (row.updated_at or row.created_at) + timedelta(seconds=seconds)
    return {
        "status": row.status,
        "retry_count": row.retry_count,
        "retry_after": _iso(row.retry_after),
        "frozen": mode == TokenUpdateMode.FROZEN.value,
        "update_mode": mode,
        "next_refresh_at": _iso(next_refresh),
        "host_rate_limited_until": _iso(row.host_rate_limited_until),
    }


def _attempt(row: Any) -> dict[str, Any]:
    return {"at": row.at.isoformat(), **{name: getattr(row, name) for name in ATTEMPT_FIELDS}}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
