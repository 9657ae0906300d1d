"""How long a token's new metadata took to become visible after the chain said it changed:
`token_metadata_freshness_seconds{cause}`, from the block time of the SIP-019 notification
or the mint that made its job due to the commit that stored the metadata
(docs/fetch-history.md#freshness).

Observed after the commit (a rollback observes nothing), as the change log counts its entries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from shared.models import JobTrigger

CAUSES = (JobTrigger.NOTIFICATION.value, JobTrigger.MINT.value)
_PENDING = "token_metadata_freshness"

# In the process's default registry: workers export it (workers/metrics.py). Blocks come
# every few seconds to ten minutes, and a retried fetch waits up to an hour: buckets from a
# second to a day.
FRESHNESS = Histogram(
    "token_metadata_freshness_seconds",
    "From the block time of the notification or mint that made a token's job due to the "
    "commit of its new metadata, by cause (notification, mint)",
    ["cause"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
for _cause in CAUSES:
    FRESHNESS.labels(_cause)


def observe_when_committed(session: Session, causes: Iterable[tuple[str, datetime | None]]) -> None:
    """Note each stored token's (trigger, caused_at); those caused by a notification or a mint
    are observed once the session's transaction commits."""
    pending: list[tuple[str, datetime]] = [
        (trigger, at) for trigger, at in causes if trigger in CAUSES and at is not None
    ]
    if not pending:
        return
    waiting: list[tuple[str, datetime]] | None = session.info.get(_PENDING)
    if waiting is None:
        waiting = session.info[_PENDING] = []
        if not event.contains(session, "after_commit", _observe):
            event.listen(session, "after_commit", _observe)
            event.listen(session, "after_transaction_end", _forget)
    waiting.extend(pending)


def _observe(session: Session) -> None:
    now = time.time()
    for cause, at in session.info.pop(_PENDING, None) or []:
        FRESHNESS.labels(cause).observe(max(0.0, now - at.timestamp()))


def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back, or observed at the commit
        session.info.pop(_PENDING, None)
