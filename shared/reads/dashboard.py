"""Everything the operator dashboard shows (docs/dashboard.md), read in one request.

Postgres gives the index's progress, throughput, failures and rate-limited hosts; Redis the
broker's queue lengths. Redis being away leaves the queue lengths out, not the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import JobStatus
from shared.reads.backfill import backfill_progress
from shared.reads.failures import Failures, read_failures
from shared.reads.progress import TOKEN_KINDS, ContractProgress, Progress, index_progress
from shared.reads.queue_lengths import read_queue_lengths
from shared.reads.rate_limited_hosts import RateLimitedHosts, read_rate_limited_hosts
from shared.reads.throughput import Throughput, fetch_throughput


@dataclass(frozen=True)
class QueueLengths:
    broker: dict[str, int] | None  # None: Redis could not be read (`broker_error` says why)
    broker_error: str | None
    token_jobs: dict[str, int]  # by status
    contract_jobs: dict[str, int]


@dataclass(frozen=True)
class Dashboard:
    generated_at: datetime
    index: Progress
    contracts: list[ContractProgress]
    throughput: Throughput
    failures: Failures
    rate_limited_hosts: RateLimitedHosts
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
        queues=_queue_lengths(index, broker),
    )


def _queue_lengths(index: Progress, broker: redis.Redis) -> QueueLengths:
    try:
        lengths, error = read_queue_lengths(broker), None
    except redis.RedisError as exc:
        lengths, error = None, f"{type(exc).__name__}: {exc}"
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
