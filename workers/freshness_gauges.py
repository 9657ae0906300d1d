"""The freshness gauges every worker exports (docs/freshness.md):

- `token_metadata_oldest_due_job_age_seconds{queue}`: how long the oldest job waiting for a
  worker has waited, per queue (contracts, tokens, refresh, images; 0: none waiting);
- `token_metadata_dynamic_tokens_overdue`: dynamic tokens still waiting for a refresh more
  than DYNAMIC_REFRESH_GRACE_S after it was due.

Both describe the shared database, not this process: they are read from Postgres when
scraped, never kept up by a writer that could stop (a value refreshed by beat would freeze
exactly when beat, which dispatches the jobs, stops). One worker reads them at most every
`ttl_s` and shares the reading through Redis, so the database does the queries about once
per `ttl_s` however many workers are scraped. Every worker exports the same values: graph and
alert on `max()`, never `sum()`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

from shared.chain.notifications import count_overdue_dynamic_tokens
from shared.jobs.due_ages import oldest_due_job_ages

log = logging.getLogger(__name__)

FRESHNESS_TTL_S = 10.0
# Past its refresh time a dynamic token waits for the next applied block batch (seconds on
# Stacks, up to a Bitcoin block's ten minutes) and then behind never-fetched tokens.
DYNAMIC_REFRESH_GRACE_S = 600.0
SHARED_READING_KEY = "token-metadata:freshness-gauges"


@dataclass(frozen=True)
class FreshnessReading:
    oldest_due_age_s: dict[str, float]
    dynamic_overdue: int


class FreshnessCollector(Collector):
    """The freshness gauges, read at scrape time; a reading that fails leaves them out of the
    scrape instead of failing it."""

    def __init__(
        self,
        engine: Engine,
        broker: redis.Redis,
        dynamic_interval_s: int,
        ttl_s: float = FRESHNESS_TTL_S,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.dynamic_interval_s = dynamic_interval_s
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, FreshnessReading | None] | None = None

    def collect(self) -> Iterable[Metric]:
        reading = self.read()
        if reading is None:
            return
        ages = GaugeMetricFamily(
            "token_metadata_oldest_due_job_age_seconds",
            "How long the oldest job waiting for a worker has waited, by queue (0: none; same "
            "value on every worker: use max)",
            labels=["queue"],
        )
        for queue, age_s in reading.oldest_due_age_s.items():
            ages.add_metric([queue], age_s)
        yield ages
        yield GaugeMetricFamily(
            "token_metadata_dynamic_tokens_overdue",
            "Dynamic tokens still waiting for their refresh 10 minutes after it was due (same "
            "value on every worker: use max)",
            value=reading.dynamic_overdue,
        )

    def read(self) -> FreshnessReading | None:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.ttl_s:
                self._cached = (now, self._shared_reading() or self._query())
            return self._cached[1]

    def _shared_reading(self) -> FreshnessReading | None:
        """Another worker's reading of the last `ttl_s`, if any."""
        try:
            raw = self.broker.get(SHARED_READING_KEY)
        except redis.RedisError as exc:
            log.warning("metrics: could not read the shared freshness reading: %s", exc)
            return None
        if not raw:
            return None
        try:
            return FreshnessReading(**json.loads(raw))
        except (TypeError, ValueError):  # written by another version: read our own
            return None

    def _query(self) -> FreshnessReading | None:
        try:
            with self.engine.begin() as conn:
                conn.execute(text("SET LOCAL statement_timeout = 2000"))
                reading = FreshnessReading(
                    oldest_due_job_ages(conn),
                    count_overdue_dynamic_tokens(
                        conn, self.dynamic_interval_s, DYNAMIC_REFRESH_GRACE_S
                    ),
                )
        except Exception as exc:  # any database error: leave the gauges out of this scrape
            log.warning("metrics: could not read the freshness gauges: %s", exc)
            return None
        try:
            shared = json.dumps(asdict(reading))
            self.broker.set(SHARED_READING_KEY, shared, px=int(self.ttl_s * 1000))
        except redis.RedisError as exc:
            log.warning("metrics: could not share the freshness reading: %s", exc)
        return reading
