"""Failed and invalid jobs by reason code and by metadata host: the dashboard's failures.

Both walk `jobs_status_all_index` for the two statuses only, and answer the top few groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.errors import invalid_reason_message

TOP = 10
FAILED_STATUSES = ("failed", "invalid")

_TOTAL = text("SELECT COUNT(*) FROM jobs WHERE status IN ('failed', 'invalid')")

# A failed job has no reason code (it ran out of retries): its status stands in for one.
_BY_REASON = text(
    """
    SELECT status::text AS status, invalid_reason, COUNT(*) AS n
    FROM jobs WHERE status IN ('failed', 'invalid')
    GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT :top
    """
)

# The host of a token's URI; IPFS, Arweave and data: URIs are grouped by scheme, as each is
# served by a gateway (or by nobody), not by the host their URI seems to name.
_BY_HOST = text(
    r"""
    SELECT CASE
             WHEN t.uri IS NULL THEN '(no uri)'
             WHEN t.uri ~* '^ipfs:' THEN 'ipfs'
             WHEN t.uri ~* '^ar:' THEN 'arweave'
             WHEN t.uri ~* '^data:' THEN 'data'
             ELSE COALESCE(
               lower(substring(t.uri FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)')),
               '(unparsable uri)')
           END AS host,
           COUNT(*) AS n
    FROM jobs j JOIN tokens t ON t.id = j.token_id
    WHERE j.status IN ('failed', 'invalid')
    GROUP BY 1 ORDER BY n DESC, 1 LIMIT :top
    """
)


@dataclass(frozen=True)
class ReasonCount:
    status: str
    code: int | None
    message: str
    jobs: int


@dataclass(frozen=True)
class HostCount:
    host: str
    jobs: int


@dataclass(frozen=True)
class Failures:
    total: int  # every failed or invalid job, token or contract
    by_reason: list[ReasonCount]
    by_host: list[HostCount]  # token jobs only: a contract job fetches no metadata


def read_failures(session: Session, top: int = TOP) -> Failures:
    total = int(session.execute(_TOTAL).scalar_one())
    by_reason = [
        ReasonCount(row.status, row.invalid_reason, _reason_message(row), int(row.n))
        for row in session.execute(_BY_REASON, {"top": top})
    ]
    by_host = [HostCount(row.host, int(row.n)) for row in session.execute(_BY_HOST, {"top": top})]
    return Failures(total, by_reason, by_host)


def _reason_message(row: object) -> str:
    if getattr(row, "status", None) == "failed":
        return "Failed after its retries (a retryable error each time)"
    return invalid_reason_message(getattr(row, "invalid_reason", None))
