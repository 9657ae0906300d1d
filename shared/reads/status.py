"""The status route's and the metrics' figures: chain tip and counts of tokens, contracts, jobs.

The counts are `COUNT(*) ... GROUP BY` over whole tables (about 200-350 ms at a million tokens
on two cores), so they are kept for a few seconds (`CountsCache`) instead of being counted on
every call; the chain tip is one primary-key read and always fresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.models import JobStatus, Sip, TokenType

_CHAIN_TIP_QUERY = text("SELECT block_height, index_block_hash FROM chain_tip LIMIT 1")

_COUNTS_QUERY = text(
    """
    SELECT 'chain_tip' AS kind, 'block_height' AS key, block_height::bigint AS n FROM chain_tip
    UNION ALL
    SELECT 'chain_tip', 'checkpoint_unknown', (checkpoint_unknown_since IS NOT NULL)::int
    FROM chain_tip
    UNION ALL
    SELECT 'tokens', type::text, COUNT(*) FROM tokens GROUP BY type
    UNION ALL
    SELECT 'token_contracts', sip::text, COUNT(*) FROM smart_contracts GROUP BY sip
    UNION ALL
    SELECT 'job_queue', status::text, COUNT(*) FROM jobs GROUP BY status
    """
)

DEFAULT_COUNTS_TTL_S = 5.0


@dataclass(frozen=True)
class ChainTipView:
    block_height: int
    index_block_hash: str | None


@dataclass(frozen=True)
class IndexCounts:
    """Rows per token type, contract SIP and job status; only values present are keys."""

    block_height: int = 1
    # The Stacks API database has no row for the checkpoint's block: the monitor waits for it
    # (docs/chain-monitor.md#database-swap).
    checkpoint_unknown: bool = False
    tokens: dict[str, int] = field(default_factory=dict)
    token_contracts: dict[str, int] = field(default_factory=dict)
    job_queue: dict[str, int] = field(default_factory=dict)

    def gauges(self) -> dict[str, dict[str, int]]:
        """Every known label with its count, zero when absent (so a gauge never goes stale)."""
        return {
            "type": {t.value: self.tokens.get(t.value, 0) for t in TokenType},
            "sip": {s.value: self.token_contracts.get(s.value, 0) for s in Sip},
            "status": {s.value: self.job_queue.get(s.value, 0) for s in JobStatus},
        }


def read_chain_tip(session: Session) -> ChainTipView:
    row = session.execute(_CHAIN_TIP_QUERY).first()
    if row is None:  # the migration inserts the row; be lenient with a hand-made database
        return ChainTipView(block_height=1, index_block_hash=None)
    return ChainTipView(block_height=row.block_height, index_block_hash=row.index_block_hash)


def count_index(session: Session) -> IndexCounts:
    """All the counts (and the chain tip height) in one query."""
    groups: dict[str, dict[str, int]] = {"tokens": {}, "token_contracts": {}, "job_queue": {}}
    tip = {"block_height": 1, "checkpoint_unknown": 0}
    for kind, key, n in session.execute(_COUNTS_QUERY).all():
        if kind == "chain_tip":
            tip[key] = int(n)
        else:
            groups[kind][key] = int(n)
    return IndexCounts(
        block_height=tip["block_height"],
        checkpoint_unknown=bool(tip["checkpoint_unknown"]),
        **groups,
    )


class CountsCache:
    """Counts at most `ttl_s` old; while one thread refreshes them the others serve the old ones."""

    def __init__(self, ttl_s: float = DEFAULT_COUNTS_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: IndexCounts | None = None
        self._loaded_at = 0.0

    def get(self, load: Callable[[], IndexCounts]) -> IndexCounts:
        value = self._value
        if value is not None and self._fresh():
            return value
        if value is None:
            self._lock.acquire()
        elif not self._lock.acquire(blocking=False):
            return value  # someone else is refreshing: the previous figures do meanwhile
        try:
            value = self._value
            if value is None or not self._fresh():
                value = load()
                self._value, self._loaded_at = value, time.monotonic()
            return value
        finally:
            self._lock.release()

    def _fresh(self) -> bool:
        return time.monotonic() - self._loaded_at < self.ttl_s


def service_status(
    session: Session, counts: CountsCache, tip: ChainTipView | None = None
) -> dict[str, Any]:
    """Chain tip (null until the first import), then the non-empty count groups; `tip`: the
    one already read for the ETag, so that the ETag is the body's own block height."""
    tip = tip or read_chain_tip(session)
    figures = counts.get(lambda: count_index(session))
    status: dict[str, Any] = {
        "chain_tip": None
        if tip.index_block_hash is None
        else {"block_height": tip.block_height, "index_block_hash": tip.index_block_hash}
    }
    for key in ("tokens", "token_contracts", "job_queue"):
        group = getattr(figures, key)
        if group:
            status[key] = dict(group)
    return status
