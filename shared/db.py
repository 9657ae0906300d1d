"""Engines and sessions: built by factories, never at import (one engine per process)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from shared.config import normalize_database_url
from shared.pooling import connection_options

# A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_S = 2.0


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    application_name: str = "token-metadata",
    transaction_pooled: bool = False,
) -> Engine:
    """A pooled psycopg 3 engine that survives a Postgres restart.

    SQLAlchemy's `pool_pre_ping` costs a round trip on every checkout: a third of an API
    request's time in a profile. Instead a connection is pinged only after it sat idle for
    PING_AFTER_IDLE_S; one used moments before a restart fails its first statement, which
    invalidates the whole pool (SQLAlchemy's disconnect handling), so every other stale
    connection is replaced before use and the failed unit of work is retried by its caller
    (a job is deferred; an API client gets a 500 once, as with a request in flight).

    `transaction_pooled`: the URL goes through a pooler in transaction mode (`shared.pooling`).
    """
    engine = create_engine(
        normalize_database_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={
            "application_name": application_name,
            "connect_timeout": 10,
            **connection_options(transaction_pooled),
        },
    )

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle = time.monotonic() - record.info.get(_CHECKED_IN_AT, 0.0)
        if idle < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)  # leaves no transaction open
        except Exception as exc:  # the pool opens a new connection and tries again
            raise DisconnectionError(f"stale connection: {exc}") from exc

    event.listen(engine, "checkin", _remember_checkin)
    event.listen(engine, "checkout", ping_if_idle)
    return engine


_CHECKED_IN_AT = "checked_in_at"


def _remember_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
