"""The API under test: a Flask test client whose every response is checked against the
reference OpenAPI document, and sessions on the test's own migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from integration.api.openapi_check import ResponseChecker, load_ours, load_reference
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from api.app import create_app
from api.db import RAW_READS, RawReads, close_db
from shared.config import Settings
from shared.db import make_engine


class CheckedClient(FlaskClient):
    """A test client that validates each response it receives."""

    checker: ResponseChecker

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        self.checker.check(response)
        return response


@pytest.fixture(scope="session")
def openapi_checker() -> ResponseChecker:
    app = create_app(Settings())  # builds the document only: no database needed
    ours = app.test_client().get("/metadata/v1/openapi.json").json
    close_db(app)
    return ResponseChecker(load_reference(), load_ours(ours))


@pytest.fixture
def db(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url, pool_size=2)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    yield app
    close_db(app)


@pytest.fixture
def client(app: Flask, openapi_checker: ResponseChecker) -> CheckedClient:
    app.test_client_class = CheckedClient
    client = app.test_client()
    assert isinstance(client, CheckedClient)
    client.checker = openapi_checker
    return client


@contextmanager
def counted_queries(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs: through its engine and through
    the raw reads of the token routes."""
    statements: list[str] = []
    engine: Engine = app.extensions["token_metadata_engine"]
    raw_reads: RawReads = app.extensions[RAW_READS]

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    raw_reads.observers.append(statements.append)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
        raw_reads.observers.remove(statements.append)
