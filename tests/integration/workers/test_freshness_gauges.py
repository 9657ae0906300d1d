"""The freshness gauges (docs/freshness.md) read from the real Postgres and scraped from a
worker's exporter over loopback HTTP: the oldest due job's age per queue and the dynamic
tokens overdue for their refresh; one reading shared by the workers through Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import func, update
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_metadata, add_token
from support.worker_exporter import scrape, start, value

from shared.config import Settings
from shared.db import make_engine, session_scope
from shared.models import ImageJob, Job, JobStatus, Token, TokenUpdateMode, UpdateNotification
from workers import metrics
from workers.freshness_gauges import SHARED_READING_KEY, FreshnessCollector

AGE = "token_metadata_oldest_due_job_age_seconds"
OVERDUE = "token_metadata_dynamic_tokens_overdue"
QUEUES = ("contracts", "tokens", "refresh", "images")


def ago(seconds: float) -> Any:
    return func.now() - timedelta(seconds=seconds)


def set_job(session: Session, **values: Any) -> None:
    """Set the job row of the token or contract named by the one `*_id` keyword."""
    (column, subject_id), *_ = [(k, v) for k, v in values.items() if k.endswith("_id")]
    changes = {k: v for k, v in values.items() if not k.endswith("_id")}
    session.execute(update(Job).where(getattr(Job, column) == subject_id).values(changes))


@pytest.fixture
def no_shared_reading(redis_url: str) -> Iterator[redis.Redis]:
    """Another test's reading (of another database) must not answer for this one."""
    client = redis.Redis.from_url(redis_url)
    client.delete(SHARED_READING_KEY)
    yield client
    client.delete(SHARED_READING_KEY)
    client.close()


@pytest.fixture
def exporter(settings: Settings, no_shared_reading: redis.Redis) -> Iterator[Any]:
    running = start(settings)
    yield running
    running.stop()


def test_oldest_due_job_age_is_reported_per_queue(
    exporter: metrics.MetricsExporter, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        contract = add_contract(session, job_status=JobStatus.PENDING)
        set_job(session, smart_contract_id=contract.id, updated_at=ago(300))
        # Never stored: its job goes to `tokens`. Queued, no worker holds it yet.
        new = add_token(session, contract, 1, JobStatus.QUEUED, processed=False)
        set_job(session, token_id=new.id, updated_at=ago(120))
        # Stored before: `refresh`. A retry due a minute ago.
        stored = add_token(session, contract, 2, JobStatus.PENDING)
        set_job(session, token_id=stored.id, updated_at=ago(900), retry_after=ago(60))
        # Older but not waiting: a retry not due yet, a job a live worker runs.
        later = add_token(session, contract, 3, JobStatus.PENDING)
        set_job(session, token_id=later.id, updated_at=ago(7200), retry_after=ago(-300))
        running = add_token(session, contract, 4, JobStatus.QUEUED)
        set_job(session, token_id=running.id, updated_at=ago(7200), locked_until=ago(-30))
        metadata_id = add_metadata(session, stored)
        session.add(
            ImageJob(metadata_id=metadata_id, status=JobStatus.PENDING, updated_at=ago(500))
        )
    samples = scrape(exporter)
    ages = {queue: value(samples, AGE, queue=queue) for queue in QUEUES}
    expected = {"contracts": 300, "tokens": 120, "refresh": 60, "images": 500}
    for queue, age in ages.items():
        assert age is not None
        assert expected[queue] - 1 <= age < expected[queue] + 60, (queue, age)


def test_a_queue_with_nothing_due_reports_zero(
    exporter: metrics.MetricsExporter, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        contract = add_contract(session)  # done
        waiting_later = add_token(session, contract, 1, JobStatus.PENDING)
        set_job(session, token_id=waiting_later.id, retry_after=ago(-600), updated_at=ago(3600))
        running = add_token(session, contract, 2, JobStatus.QUEUED, processed=False)
        set_job(session, token_id=running.id, locked_until=ago(-30), updated_at=ago(3600))
    samples = scrape(exporter)
    assert {queue: value(samples, AGE, queue=queue) for queue in QUEUES} == dict.fromkeys(
        QUEUES, 0.0
    )


def notify(session: Session, token: Token, mode: TokenUpdateMode, height: int, **kw: Any) -> None:
    session.add(
        UpdateNotification(
            token_id=token.id,
            update_mode=mode,
            block_height=height,
            index_block_hash=f"0x{height:06x}",
            tx_id="0xabcdef",
            tx_index=0,
            event_index=0,
            **kw,
        )
    )


def dynamic_token(
    session: Session,
    contract: Any,
    number: int,
    stored_s_ago: float,
    job_status: JobStatus = JobStatus.DONE,
    ttl: int | None = 3600,
) -> Token:
    token = add_token(session, contract, number, job_status)
    session.execute(update(Token).where(Token.id == token.id).values(updated_at=ago(stored_s_ago)))
    notify(session, token, TokenUpdateMode.DYNAMIC, 10, ttl=ttl)
    return token


def test_dynamic_tokens_past_their_refresh_and_grace_are_overdue(
    exporter: metrics.MetricsExporter, sessions: sessionmaker[Session]
) -> None:
    hour = 3600
    with session_scope(sessions) as session:
        contract = add_contract(session)
        dynamic_token(session, contract, 1, 2 * hour)  # due an hour ago, not pended yet
        dynamic_token(session, contract, 2, 2 * hour, JobStatus.PENDING)  # waiting for a worker
        dynamic_token(session, contract, 3, 2 * 86_400, JobStatus.QUEUED, ttl=None)  # interval
        dynamic_token(session, contract, 4, hour + 300)  # due 5 minutes ago: within the grace
        dynamic_token(session, contract, 5, 2 * hour, JobStatus.FAILED)  # the refresh ended
        later_standard = dynamic_token(session, contract, 6, 2 * 86_400)
        notify(session, later_standard, TokenUpdateMode.STANDARD, 11)
        standard = add_token(session, contract, 7)
        notify(session, standard, TokenUpdateMode.STANDARD, 10)
    assert value(scrape(exporter), OVERDUE) == 3


def test_no_dynamic_token_is_zero_overdue(exporter: metrics.MetricsExporter) -> None:
    assert value(scrape(exporter), OVERDUE) == 0


def test_workers_share_one_reading_through_redis(
    settings: Settings, sessions: sessionmaker[Session], no_shared_reading: redis.Redis
) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    first = FreshnessCollector(engine, no_shared_reading, 86_400, ttl_s=60)
    second = FreshnessCollector(engine, no_shared_reading, 86_400, ttl_s=60)
    try:
        before = first.read()
        with session_scope(sessions) as session:
            contract = add_contract(session, job_status=JobStatus.PENDING)
            set_job(session, smart_contract_id=contract.id, updated_at=ago(300))
        shared = second.read()  # the first worker's reading: no second query
        no_shared_reading.delete(SHARED_READING_KEY)
        fresh = FreshnessCollector(engine, no_shared_reading, 86_400).read()
    finally:
        engine.dispose()
    assert before is not None
    assert shared == before
    assert before.oldest_due_age_s["contracts"] == 0
    assert fresh is not None
    assert fresh.oldest_due_age_s["contracts"] >= 299


def test_an_unreachable_database_leaves_the_gauges_out(
    settings: Settings, no_shared_reading: redis.Redis
) -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_size=1)
    try:
        collector = FreshnessCollector(engine, no_shared_reading, 86_400)
        assert list(collector.collect()) == []
    finally:
        engine.dispose()


def test_a_shared_reading_it_cannot_read_is_replaced_by_its_own(
    settings: Settings, no_shared_reading: redis.Redis
) -> None:
    no_shared_reading.set(SHARED_READING_KEY, b'{"another": "shape"}')
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        reading = FreshnessCollector(engine, no_shared_reading, 86_400).read()
    finally:
        engine.dispose()
    assert reading is not None
    assert reading.oldest_due_age_s == dict.fromkeys(QUEUES, 0.0)
