"""Tokens fetched per minute over the last hour: the dashboard's throughput chart.

It counts tokens by `tokens.updated_at`, which a successful fetch (first or refresh) sets,
through the expression index `tokens_coalesce_updated_at_created_at_index`: the range scan
touches only the last hour's rows. Counting finished jobs by `jobs.updated_at` instead would
read every job of the status (no index on the time), millions of rows on a full index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

BUCKET_S = 60
WINDOW_BUCKETS = 60

# The WHERE clause repeats the index's expression so that the planner can use it; the
# minutes without a fetch come from generate_series, as zeros.
_PER_MINUTE = text(
    """
    WITH counted AS (
      SELECT date_trunc('minute', updated_at) AS minute, COUNT(*) AS n
      FROM tokens
      WHERE COALESCE(updated_at, created_at)
              >= date_trunc('minute', NOW()) - make_interval(mins => :minutes - 1)
        AND updated_at IS NOT NULL
      GROUP BY 1
    )
    SELECT m.minute, COALESCE(counted.n, 0) AS n
    FROM generate_series(date_trunc('minute', NOW()) - make_interval(mins => :minutes - 1),
                         date_trunc('minute', NOW()), interval '1 minute') AS m(minute)
    LEFT JOIN counted ON counted.minute = m.minute
    ORDER BY m.minute
    """
)


@dataclass(frozen=True)
class MinuteCount:
    """Tokens fetched in the minute starting at `at`."""

    at: datetime
    tokens: int


@dataclass(frozen=True)
class Throughput:
    bucket_s: int
    minutes: list[MinuteCount]  # oldest first, the current (partial) minute last

    @property
    def total(self) -> int:
        return sum(minute.tokens for minute in self.minutes)


def fetch_throughput(session: Session, buckets: int = WINDOW_BUCKETS) -> Throughput:
    """One count per minute, zeros included, ending with the current minute."""
    rows = session.execute(_PER_MINUTE, {"minutes": buckets})
    return Throughput(BUCKET_S, [MinuteCount(row.minute, int(row.n)) for row in rows])
