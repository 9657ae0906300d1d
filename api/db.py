"""One database session per request, closed when the request ends."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.db import make_engine, make_session_factory


def init_db(app: Flask, settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_size=10, application_name="tm-api")
    app.extensions["token_metadata_sessions"] = make_session_factory(engine)
    app.extensions["token_metadata_engine"] = engine
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    if "db_session" not in g:
        g.db_session = current_app.extensions["token_metadata_sessions"]()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
