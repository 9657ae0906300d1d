"""The contracts whose tokens are being fetched, each with its progress: the dashboard's bars."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.reads.progress import ContractProgress, contract_progress

TOP = 20

# Contracts with waiting work: token jobs pending or queued (walked through the status index),
# or the contract's own job still enumerating its tokens. The most waiting tokens first.
_ACTIVE_CONTRACTS = text(
    """
    SELECT c.principal, SUM(w.n) AS waiting
    FROM (
      SELECT t.smart_contract_id AS contract_id, COUNT(*) AS n
      FROM jobs j JOIN tokens t ON t.id = j.token_id
      WHERE j.status IN ('pending', 'queued')
      GROUP BY 1
      UNION ALL
      SELECT smart_contract_id, 0 FROM jobs
      WHERE status IN ('pending', 'queued') AND smart_contract_id IS NOT NULL
    ) AS w JOIN smart_contracts c ON c.id = w.contract_id
    GROUP BY c.principal ORDER BY waiting DESC, c.principal LIMIT :top
    """
)


def backfill_progress(
    session: Session, top: int = TOP, window_s: float = 60.0
) -> list[ContractProgress]:
    """Up to `top` contracts with work waiting, each read as `contract_progress` reads one
    (a query per contract: few contracts are backfilled at once)."""
    principals = session.scalars(_ACTIVE_CONTRACTS, {"top": top}).all()
    found = (contract_progress(session, principal, window_s) for principal in principals)
    return [progress for progress in found if progress is not None]
