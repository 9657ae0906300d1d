"""The API's database access: sessions per request, raw reads for the hot routes, counts cache.

The API only reads, so its connections are in autocommit mode: no BEGIN/ROLLBACK round trips
around each request's one or two statements (every statement is a consistent snapshot).

Most routes use a SQLAlchemy session, closed when the request ends. The token routes,
`/search` and `/ft`, the most requested by far, read through `RawReads` instead: one plain
psycopg connection per thread, its statements prepared by psycopg after a few runs. A profile
put SQLAlchemy's checkout, execution and row set-up at 420 us of CPU per token query against
140 us this way.

With DATABASE_READ_URL set, the public read routes read from that replica and the admin
routes from the primary (`reads_primary`, the one place that decides); the routes that write
(self-service refresh, admin, webhook endpoints) open their own transactions on the primary
through `ENGINE` (docs/replicas-and-poolers.md#read-replicas).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from flask import Flask, current_app, g, has_request_context, request
from psycopg.rows import namedtuple_row
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import make_engine, make_session_factory
from shared.pooling import connection_options
from shared.reads.status import CountsCache

# SESSIONS, READ_ENGINE and RAW_READS read the replica (the primary when there is none);
# ENGINE, PRIMARY_SESSIONS and PRIMARY_RAW_READS are the primary's.
SESSIONS, ENGINE, COUNTS, RAW_READS = (
    "token_metadata_sessions",
    "token_metadata_engine",
    "token_metadata_counts",
    "token_metadata_raw_reads",
)
READ_ENGINE, PRIMARY_SESSIONS, PRIMARY_RAW_READS, PRIMARY_BLUEPRINTS = (
    "token_metadata_read_engine",
    "token_metadata_primary_sessions",
    "token_metadata_primary_raw_reads",
    "token_metadata_primary_blueprints",
)
CONNECT_TIMEOUT_S = 10


class RawReads:
    """One autocommit psycopg connection per thread, opened on first use.

    A connection that broke (a Postgres restart, a network cut) is replaced and the read run
    again once: reads are idempotent, so a restart costs no client a 500.
    """

    def __init__(self, engine: Engine, transaction_pooled: bool = False) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        # Through a transaction-mode pooler nothing is prepared (`shared.pooling`).
        self._options = connection_options(transaction_pooled)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[psycopg.Connection[Any]] = []
        # Called with each statement before it is sent (tests count them).
        self.observers: list[Callable[[str], None]] = []

    def one(self, sql: str, params: Mapping[str, Any]) -> Any:
        """The first row of `sql` (psycopg `%(name)s` placeholders) as a named tuple, or None."""
        rows = self._read(sql, params, many=False)
        return rows[0] if rows else None

    def all(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        return self._read(sql, params, many=True)

    def _read(self, sql: str, params: Mapping[str, Any], many: bool) -> list[Any]:
        for observe in self.observers:
            observe(sql)
        conn = self._connection()
        try:
            return self._run(conn, sql, params, many)
        except psycopg.OperationalError:
            if not conn.closed:  # `closed` covers a broken connection too
                raise  # a failed statement, not a lost connection
            self._discard(conn)
            return self._run(self._connection(), sql, params, many)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()

    @staticmethod
    def _run(
        conn: psycopg.Connection[Any], sql: str, params: Mapping[str, Any], many: bool
    ) -> list[Any]:
        with conn.cursor(row_factory=namedtuple_row) as cursor:
            cursor.execute(sql, params)  # type: ignore[arg-type]  # a str of our own constants
            if many:
                return cursor.fetchall()
            row = cursor.fetchone()
            return [] if row is None else [row]

    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None:  # a closed one fails its next read and is replaced there
            conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                application_name="tm-api-raw",
                connect_timeout=CONNECT_TIMEOUT_S,
                **self._options,
            )
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._opened:
                self._opened.remove(conn)
        conn.close()


def init_db(app: Flask, settings: Settings) -> None:
    pooled = settings.transaction_pooled
    engine = make_engine(
        settings.database_url, pool_size=10, application_name="tm-api", transaction_pooled=pooled
    )
    read_engine = engine
    if settings.reads_url() != settings.database_url:
        read_engine = make_engine(
            settings.reads_url(),
            pool_size=10,
            application_name="tm-api-reads",
            transaction_pooled=pooled,
        )
    app.extensions[ENGINE] = engine
    app.extensions[READ_ENGINE] = read_engine
    app.extensions[SESSIONS] = _autocommit_sessions(read_engine)
    app.extensions[PRIMARY_SESSIONS] = _autocommit_sessions(engine)
    app.extensions[RAW_READS] = RawReads(read_engine, pooled)
    app.extensions[PRIMARY_RAW_READS] = (
        app.extensions[RAW_READS] if read_engine is engine else RawReads(engine, pooled)
    )
    app.extensions[PRIMARY_BLUEPRINTS] = set()
    app.extensions[COUNTS] = CountsCache()  # filled from the replica's reads only
    app.teardown_appcontext(_close_session)


def _autocommit_sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))


def read_primary(app: Flask, blueprint_name: str) -> None:
    """The blueprint's routes read from the primary (the admin routes: an operator acts on
    what they read, and a replica's lag would show work as not done yet)."""
    app.extensions[PRIMARY_BLUEPRINTS].add(blueprint_name)


def reads_primary() -> bool:
    """Whether this request reads from the primary rather than the replica."""
    return has_request_context() and request.blueprint in current_app.extensions[PRIMARY_BLUEPRINTS]


def close_db(app: Flask) -> None:
    """Close every connection the app opened (tests; gunicorn workers just exit)."""
    app.extensions[RAW_READS].close()
    app.extensions[PRIMARY_RAW_READS].close()
    app.extensions[ENGINE].dispose()
    app.extensions[READ_ENGINE].dispose()


def get_raw_reads() -> RawReads:
    reads: RawReads = current_app.extensions[PRIMARY_RAW_READS if reads_primary() else RAW_READS]
    return reads


def get_session() -> Session:
    """The request's session, autocommit (every statement is a snapshot of its own) and on one
    connection, so one server, for the whole request (an ETag and the body it describes come
    from the same server)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions[PRIMARY_SESSIONS if reads_primary() else SESSIONS]()
    session: Session = g.db_session
    return session


def get_counts_cache() -> CountsCache:
    """Status and metrics counts, shared by every request of this process."""
    counts: CountsCache = current_app.extensions[COUNTS]
    return counts


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
