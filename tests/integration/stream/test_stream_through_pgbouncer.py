"""The stream process with DATABASE_URL through PgBouncer in transaction mode
(docs/replicas-and-poolers.md#poolers): LISTEN needs a connection that keeps its session, so
it goes to DATABASE_SESSION_URL; without one the feed only polls, and still delivers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from support.pgbouncer import Pooler, pgbouncer
from support.stream import stream_server, subscribed

from shared.changes import entry, record
from shared.config import Settings
from shared.db import make_engine, session_scope
from shared.models import ChangeKind

APES = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7.apes"
NO_POLL = 600.0  # an entry arriving in the test was brought by its notification


@pytest.fixture
def pooler(postgres) -> Iterator[Pooler]:
    with pgbouncer(postgres.server_url, pool_size=2) as running:
        yield running


@pytest.fixture
def pooled(settings: Settings, pooler: Pooler) -> Settings:
    return replace(
        settings,
        database_url=pooler.url(make_url(settings.database_url).database or ""),
        database_pooler="pgbouncer",
    )


def write_through(settings: Settings, *numbers: int) -> None:
    """Writers commit through the pooler too: their NOTIFY is sent at commit."""
    engine = make_engine(settings.database_url, pool_size=1, transaction_pooled=True)
    try:
        with session_scope(sessionmaker(bind=engine)) as s:
            record(s, [entry(ChangeKind.TOKEN_ADDED, APES, n) for n in numbers])
    finally:
        engine.dispose()


def test_notifications_reach_the_stream_on_its_session_connection(
    pooled: Settings, settings: Settings
) -> None:
    with_session = replace(
        pooled, database_session_url=settings.database_url, stream_poll_s=NO_POLL
    )
    with stream_server(with_session) as server, subscribed(server.url()) as events:
        write_through(pooled, 1, 2)
        received = events.events(2)
    assert [e.data["token_id"] for e in received] == ["1", "2"]


def test_without_a_session_connection_the_stream_polls_and_delivers(pooled: Settings) -> None:
    assert pooled.session_url() is None
    with stream_server(replace(pooled, stream_poll_s=0.2)) as server:
        assert [task.get_name() for task in server.feed._tasks] == ["stream-read"]
        with subscribed(server.url()) as events:
            write_through(pooled, 3)
            (received,) = events.events(1)
    assert received.data["token_id"] == "3"
