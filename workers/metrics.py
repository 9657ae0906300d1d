"""Prometheus metrics of a worker process, served over HTTP on WORKER_METRICS_PORT.

- `token_metadata_tasks_total{task,outcome}` and `token_metadata_task_duration_seconds{task}`,
  from Celery's task signals: a task returned (done), raised (failed), or its message comes
  back later because Postgres was unreachable before the claim (deferred);
- `token_metadata_jobs_total{task,outcome}`: the jobs those tasks ran, from their return values
  (a batch task returns counts by status): done, retry (pending again: a retryable error, a
  busy host or a database outage), failed, invalid, skipped (another delivery had the job);
- `token_metadata_fetch_outcomes_total{kind,host_class,outcome}`, counted where metadata and
  images are fetched (shared/indexing/fetch_counts.py) in the process's default registry,
  which is exported whole (with prometheus_client's process and Python metrics);
- `token_metadata_host_slot_waiting` and `token_metadata_host_slot_waits_total{outcome}`
  (shared/indexing/host_slots.py, default registry): fetches waiting for a busy host's slot,
  and how waits ended (granted, or busy: deferred);
- `token_metadata_changes_written_total{kind}` (shared/changes.py, default registry): change-log
  entries written by this process's committed transactions;
- `token_metadata_freshness_seconds{cause}` (shared/indexing/freshness.py, default registry):
  from the block time of the notification or mint that made a token due to the commit of its
  new metadata;
- `token_metadata_queue_length{queue}` (Redis) and `token_metadata_oldest_pending_job_age_seconds`
  (Postgres), read when scraped and kept a few seconds; the freshness gauges
  `token_metadata_oldest_due_job_age_seconds{queue}` and `token_metadata_dynamic_tokens_overdue`
  (workers/freshness_gauges.py). Every worker exports the same values of these: dashboards and
  alerts take `max()` of them, not `sum()`.

The pool is threads, so one worker is one process and one exporter (a prefork pool would count
its children's tasks nowhere). Several workers on one machine: each takes the first free port
from WORKER_METRICS_PORT up, PORT_ATTEMPTS of them, and logs which; 0 disables the exporter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

from shared.config import Settings
from shared.db import make_engine
from shared.queues import (
    CACHE_IMAGES_TASK,
    PROCESS_CONTRACT_TASK,
    PROCESS_TOKEN_TASK,
    PROCESS_TOKENS_TASK,
    WORKER_QUEUES,
)
from shared.reads.queue_lengths import read_queue_lengths
from workers.freshness_gauges import FreshnessCollector

log = logging.getLogger(__name__)

PORT_ATTEMPTS = 10
BACKLOG_TTL_S = 5.0

TASKS = Counter("token_metadata_tasks", "Tasks run, by task name and outcome", ["task", "outcome"])
TASK_DURATION = Histogram(
    "token_metadata_task_duration_seconds",
    "Time a task took, by task name",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
JOBS = Counter("token_metadata_jobs", "Jobs run by the job tasks, by outcome", ["task", "outcome"])

# Tasks that run jobs and return their status (or, for a batch, counts by status).
JOB_TASKS = frozenset(
    {PROCESS_CONTRACT_TASK, PROCESS_TOKEN_TASK, PROCESS_TOKENS_TASK, CACHE_IMAGES_TASK}
)
_JOB_STATUS_OUTCOMES = {
    "done": "done",
    "pending": "retry",
    "failed": "failed",
    "invalid": "invalid",
}
# A task that did not return: its message comes back later (retry) or it raised.
_CELERY_STATE_OUTCOMES = {"SUCCESS": "done", "RETRY": "deferred", "IGNORED": "skipped"}

# When each running task started, by task id (threads of this process).
_started: dict[str, float] = {}


def task_started(task_id: str | None = None, **_kwargs: Any) -> None:
    """task_prerun: note the start."""
    if task_id is not None:
        _started[task_id] = time.perf_counter()


def task_finished(
    task_id: str | None = None,
    task: Any = None,
    state: str | None = None,
    retval: Any = None,
    **_kwargs: Any,
) -> None:
    """task_postrun: count the task and its jobs by outcome; record its duration."""
    name = getattr(task, "name", None) or "unknown"
    started = _started.pop(task_id, None) if task_id is not None else None
    if started is not None:
        TASK_DURATION.labels(name).observe(time.perf_counter() - started)
    TASKS.labels(name, task_outcome(state)).inc()
    if state == "SUCCESS" and name in JOB_TASKS:
        for outcome, count in job_outcomes(retval).items():
            JOBS.labels(name, outcome).inc(count)


def task_outcome(state: str | None) -> str:
    return _CELERY_STATE_OUTCOMES.get(state or "", "failed")


def job_outcomes(retval: Any) -> dict[str, int]:
    """A job task's return value: one job's status (None: not claimable) or counts by status."""
    if retval is None:
        return {"skipped": 1}
    counts: Mapping[Any, Any] = retval if isinstance(retval, Mapping) else {retval: 1}
    tally: Tally[str] = Tally()
    for status, count in counts.items():
        tally[_JOB_STATUS_OUTCOMES.get(str(status), str(status))] += int(count)
    return dict(tally)


# Work waiting for a worker: queued and unclaimed (in Redis), or pending and due (beat queues
# it within seconds). Both subqueries walk an index on the status.
_OLDEST_WAITING_AGE = text(
    """
    SELECT EXTRACT(EPOCH FROM NOW() - LEAST(
        (SELECT MIN(updated_at) FROM jobs
          WHERE status = 'queued' AND (locked_until IS NULL OR locked_until < NOW())),
        (SELECT MIN(COALESCE(retry_after, updated_at, created_at)) FROM jobs
          WHERE status = 'pending' AND (retry_after IS NULL OR retry_after <= NOW())),
        (SELECT MIN(updated_at) FROM image_jobs
          WHERE status = 'queued' AND (locked_until IS NULL OR locked_until < NOW())),
        (SELECT MIN(COALESCE(retry_after, updated_at, created_at)) FROM image_jobs
          WHERE status = 'pending' AND (retry_after IS NULL OR retry_after <= NOW()))
    ))
    """
)


@dataclass(frozen=True)
class Backlog:
    queue_lengths: dict[str, int] | None
    oldest_age_s: float | None


class BacklogCollector(Collector):
    """Queue lengths and the oldest waiting job's age, read at scrape time, cached `ttl_s`.

    A source that cannot be read (Redis or Postgres away) leaves its metric out of the scrape
    instead of failing it.
    """

    def __init__(
        self,
        broker: redis.Redis,
        engine: Engine,
        queues: Sequence[str] = WORKER_QUEUES,
        ttl_s: float = BACKLOG_TTL_S,
    ) -> None:
        self.broker = broker
        self.engine = engine
        self.queues = tuple(queues)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, Backlog] | None = None

    def collect(self) -> Iterable[Metric]:
        backlog = self.read()
        if backlog.queue_lengths is not None:
            lengths = GaugeMetricFamily(
                "token_metadata_queue_length",
                "Messages waiting in each broker queue (same value on every worker: use max)",
                labels=["queue"],
            )
            for queue, length in backlog.queue_lengths.items():
                lengths.add_metric([queue], length)
            yield lengths
        if backlog.oldest_age_s is not None:
            yield GaugeMetricFamily(
                "token_metadata_oldest_pending_job_age_seconds",
                "How long the oldest job waiting for a worker has waited (0: none waiting)",
                value=backlog.oldest_age_s,
            )

    def read(self) -> Backlog:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.ttl_s:
                self._cached = (now, Backlog(self._queue_lengths(), self._oldest_age_s()))
            return self._cached[1]

    def _queue_lengths(self) -> dict[str, int] | None:
        try:
            return read_queue_lengths(self.broker, self.queues)
        except redis.RedisError as exc:
            log.warning("metrics: could not read the queue lengths: %s", exc)
            return None

    def _oldest_age_s(self) -> float | None:
        try:
            with self.engine.begin() as conn:
                conn.execute(text("SET LOCAL statement_timeout = 2000"))
                age = conn.execute(_OLDEST_WAITING_AGE).scalar()
        except Exception as exc:  # any database error: leave the metric out of this scrape
            log.warning("metrics: could not read the oldest waiting job: %s", exc)
            return None
        return max(0.0, float(age)) if age is not None else 0.0


class _Forward(Collector):
    """Serves another registry's metrics next to our own collectors."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


@dataclass
class MetricsExporter:
    port: int
    server: Any
    collector: BacklogCollector

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.collector.broker.close()
        self.collector.engine.dispose()


def start_exporter(settings: Settings, address: str = "0.0.0.0") -> MetricsExporter | None:  # noqa: S104 - Prometheus scrapes from elsewhere
    """Serve this process's metrics on the first free port from WORKER_METRICS_PORT."""
    first = settings.worker_metrics_port
    if first == 0:
        return None
    engine = make_engine(
        settings.database_url,
        pool_size=1,
        application_name="tm-worker-metrics",
        transaction_pooled=settings.transaction_pooled,
    )
    # A scrape must not hang on an unreachable Redis.
    broker = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    collector = BacklogCollector(broker, engine)
    served = CollectorRegistry(auto_describe=False)
    served.register(_Forward(REGISTRY))
    served.register(collector)
    interval_s = settings.metadata_dynamic_token_refresh_interval
    served.register(FreshnessCollector(engine, broker, interval_s))
    for port in range(first, min(first + PORT_ATTEMPTS, 65536)):
        try:
            server, _thread = start_http_server(port, addr=address, registry=served)
        except OSError:
            continue
        log.info("worker metrics at http://%s:%d/metrics", address, port)
        return MetricsExporter(port, server, collector)
    log.warning(
        "worker metrics disabled: ports %d-%d are all taken (set WORKER_METRICS_PORT)",
        first,
        first + PORT_ATTEMPTS - 1,
    )
    collector.broker.close()
    engine.dispose()
    return None
