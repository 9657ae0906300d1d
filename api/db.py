"""One database session per request, closed when the request ends; the app's counts cache.

The API only reads, so its connections are in autocommit mode: no BEGIN/ROLLBACK round trips
around each request's one or two statements (every statement is a consistent snapshot).
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.db import make_engine, make_session_factory
from shared.services.status import CountsCache

SESSIONS, ENGINE, COUNTS = (
    "token_metadata_sessions",
    "token_metadata_engine",
    "token_metadata_counts",
)


def init_db(app: Flask, settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_size=10, application_name="tm-api")
    app.extensions[SESSIONS] = make_session_factory(
        engine.execution_options(isolation_level="AUTOCOMMIT")
    )
    app.extensions[ENGINE] = engine
    app.extensions[COUNTS] = CountsCache()
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    if "db_session" not in g:
        g.db_session = current_app.extensions[SESSIONS]()
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
