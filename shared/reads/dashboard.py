"""Everything the operator dashboard shows (docs/dashboard.md), read in one request.

Postgres gives the index's progress, throughput, failures and rate-limited hosts; Redis the
broker's queue lengths. Redis being away leaves the queue lengths out, not the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import JobStatus
from shared.reads.backfill import backfill_progress
from shared.reads.failures import Failures, read_failures
from shared.reads.host_slots import BusyHost, read_busy_hosts
from shared.reads.progress import TOKEN_KINDS, ContractProgress, Progress, index_progress
from shared.reads.queue_lengths import read_queue_lengths
from shared.reads.rate_limited_hosts import RateLimitedHosts, read_rate_limited_hosts
from shared.reads.throughput import Throughput, fetch_throughput

T = TypeVar("T")


@dataclass(frozen=True)
class QueueLengths:
    broker: dict[str, int] | None  # None: Redis could not be read (`broker_error` says why)
    broker_error: str | None
    token_jobs: dict[str, int]  # by status
    contract_jobs: dict[str, int]


@dataclass(frozen=True)
class HostSlots:
    busy: list[BusyHost] | None  # None: Redis could not be read (`error` says why)
    error: str | None


@dataclass(frozen=True)
class Dashboard:
    generated_at: datetime
    index: Progress
    contracts: list[ContractProgress]
    throughput: Throughput
    failures: Failures
    rate_limited_hosts: RateLimitedHosts
    host_slots: HostSlots
    queues: QueueLengths


def read_dashboard(session: Session, broker: redis.Redis) -> Dashboard:
    index = index_progress(session)
    return Dashboard(
        generated_at=session.execute(select(func.now())).scalar_one(),
        index=index,
        contracts=backfill_progress(session),
        throughput=fetch_throughput(session),
        failures=read_failures(session),
        rate_limited_hosts=read_rate_limited_hosts(session),
        host_slots=HostSlots(*_from_redis(lambda: read_busy_hosts(broker))),
        queues=_queue_lengths(index, broker),
    )


def _from_redis(read: Callable[[], T]) -> tuple[T | None, str | None]:
    """What `read` answers, or None and why Redis could not be read."""
    try:
        return read(), None
    except redis.RedisError as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _queue_lengths(index: Progress, broker: redis.Redis) -> QueueLengths:
    lengths, error = _from_redis(lambda: read_queue_lengths(broker))
    return QueueLengths(
        broker=lengths,
        broker_error=error,
        token_jobs=_by_status(index, TOKEN_KINDS),
        contract_jobs=_by_status(index, tuple(k for k in index.counts if k not in TOKEN_KINDS)),
    )


def _by_status(index: Progress, kinds: tuple[str, ...]) -> dict[str, int]:
    totals = {status.value: 0 for status in JobStatus}
    for kind in kinds:
        for status, n in index.counts.get(kind, {}).items():
            totals[status] += n
    return totals
