"""The chain monitor's steps with both databases (ours and the Stacks API's) reached through
PgBouncer in transaction mode (docs/replicas-and-poolers.md#poolers): its chain lock is a
transaction-level advisory lock, so it holds for exactly one step whichever server connection
the pooler gives the step, and is not left behind on a server connection afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from integration.monitor.conftest import Monitor, RecordingBroker
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from support.pgbouncer import Pooler, pgbouncer

from shared.chain.checkpoint import try_chain_lock
from shared.chain.monitor import MonitorSettings
from shared.config import Settings
from shared.db import make_engine, session_scope
from shared.jobs.runner import JobContext
from shared.models import TokenType
from shared.queues import TOKENS_QUEUE
from shared.stacks.api_db import StacksApiDatabase


@pytest.fixture
def pooler(postgres) -> Iterator[Pooler]:
    with pgbouncer(postgres.server_url, pool_size=2) as running:
        yield running


def through(pooler: Pooler, url: str) -> str:
    return pooler.url(make_url(url).database or "")


@pytest.fixture
def settings(settings: Settings, pooler: Pooler) -> Settings:
    return replace(
        settings,
        database_url=through(pooler, settings.database_url),
        database_pooler="pgbouncer",
    )


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url, pool_size=4, transaction_pooled=True)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def monitor(
    settings: Settings,
    sessions: sessionmaker[Session],
    stacks_api_database_url: str,
    broker: RecordingBroker,
    pooler: Pooler,
) -> Iterator[Monitor]:
    chain_url = through(pooler, stacks_api_database_url)
    engine = make_engine(chain_url, pool_size=2, transaction_pooled=True)
    ctx = JobContext(settings, sessions, broker)
    yield Monitor(ctx, StacksApiDatabase(engine), broker, MonitorSettings.from_settings(settings))
    engine.dispose()


def test_the_monitor_follows_mints_through_pgbouncer(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=3)
    for _ in range(10):  # many steps: each its own transaction on whichever server connection
        chain.block()
        monitor.run()
    chain.blocks_until(99)
    block = chain.block()
    chain.mint_nft(block, principal, 4)
    result = monitor.run()
    assert result.checkpoint is not None
    assert result.checkpoint.block_height == 100
    tokens = db.tokens(principal)
    assert sorted(tokens) == [1, 2, 3, 4]
    assert (tokens[4].type, tokens[4].block_height) == (TokenType.NFT, 100)
    (message,) = monitor.broker.take()
    assert (message.job_id, message.queue) == (db.token_job(principal, 4).id, TOKENS_QUEUE)


def test_the_chain_lock_holds_for_one_transaction_through_pgbouncer(
    chain, monitor, db, following, sessions
) -> None:
    chain.blocks_until(20)
    with session_scope(sessions) as holder:
        assert try_chain_lock(holder)  # another process's step, in its transaction
        skipped = monitor.run()
        assert skipped.blocks == 0
        assert db.checkpoint()[0] == 1
    # The holder's transaction ended: its server connection no longer holds the lock.
    advanced = monitor.run()
    assert advanced.blocks == 19
    assert db.checkpoint()[0] == 20
