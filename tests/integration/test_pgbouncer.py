"""Through PgBouncer in transaction mode (docs/replicas-and-poolers.md#poolers): the system
package's pgbouncer, started by the test in front of the test server with a small pool so
that clients share server connections.

The release step's migrations, the API's routes (its engine and its raw reads), and
prepared statements across pooled server connections; the chain monitor's steps are in
tests/integration/monitor/test_monitor_through_pgbouncer.py, the processes end to end in
tests/e2e/test_pgbouncer_e2e.py.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from support.broker import emptied
from support.builders import add_contract, add_metadata, add_token
from support.pgbouncer import Pooler, pgbouncer
from support.processes import process_env, run_release

from api.app import create_app
from api.db import RawReads, close_db
from api.resources.admin import ADMIN
from api.resources.refresh import REFRESH
from shared.config import Settings
from shared.db import make_engine
from shared.models import Sip, Token
from shared.queues import WORKER_QUEUES

ADMIN_TOKEN = "pgbouncer-test-admin"
V1 = "/metadata/v1"
RUNS = 40  # psycopg prepares a statement after 5 runs on a connection


@pytest.fixture
def pooler(postgres) -> Iterator[Pooler]:
    with pgbouncer(postgres.server_url, pool_size=1) as running:
        yield running


def pooled(pooler: Pooler, database_url: str) -> str:
    return pooler.url(make_url(database_url).database or "")


def test_the_release_step_migrates_through_pgbouncer_and_leaves_no_setting_behind(
    pooler: Pooler, postgres
) -> None:
    name = f"tm_test_pgbouncer_{uuid.uuid4().hex[:8]}"
    postgres.create(name)
    env = process_env({"DATABASE_URL": pooler.url(name), "DATABASE_POOLER": "pgbouncer"})
    done = run_release(env)
    assert done.returncode == 0, done.stderr[-3000:]
    # One server connection behind the pool: the migrations' own, handed to this client now.
    with psycopg.connect(pooler.url(name, "postgresql"), autocommit=True) as conn:
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        timeouts = conn.execute(
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
        ).fetchone()
    assert head is not None
    assert head[0] >= "0011"
    assert timeouts == ("0", "0")  # SET LOCAL: gone with the migrations' transaction


def _same_query_from_two_clients(url: str, **options: object) -> list[int]:
    """Both clients run the same statement in turn, each commit handing the one server
    connection to the other."""
    results = []
    with (
        psycopg.connect(url, autocommit=True, **options) as first,  # type: ignore[arg-type]
        psycopg.connect(url, autocommit=True, **options) as second,  # type: ignore[arg-type]
    ):
        for n in range(RUNS):
            for conn in (first, second):
                row = conn.execute("SELECT %s::int + 1", (n,)).fetchone()
                assert row is not None
                results.append(row[0])
    return results


def test_prepared_statements_break_pooled_connections_unless_turned_off(
    pooler: Pooler, database_url: str
) -> None:
    url = pooled(pooler, database_url).replace("+psycopg", "")
    with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        _same_query_from_two_clients(url)  # psycopg's default: prepared after 5 runs
    expected = [n + 1 for n in range(RUNS) for _ in range(2)]
    assert _same_query_from_two_clients(url, prepare_threshold=None) == expected


def test_the_services_engines_and_raw_reads_share_pooled_connections(
    pooler: Pooler, database_url: str
) -> None:
    url = pooled(pooler, database_url)
    engine = make_engine(url, pool_size=4, transaction_pooled=True)
    raw_reads = RawReads(engine, transaction_pooled=True)
    failures: list[BaseException] = []

    def read(worker: int) -> None:
        try:
            for n in range(RUNS):
                with engine.connect() as conn:
                    value = conn.execute(text("SELECT CAST(:n AS int) * 2"), {"n": n}).scalar()
                assert value == n * 2
                row = raw_reads.one("SELECT %(n)s::int * 3 AS v", {"n": n + worker})
                assert row.v == (n + worker) * 3
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=read, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    raw_reads.close()
    engine.dispose()
    assert failures == []


@pytest.fixture
def app(pooler: Pooler, settings: Settings) -> Iterator[Flask]:
    pooled_settings = replace(
        settings,
        database_url=pooled(pooler, settings.database_url),
        database_pooler="pgbouncer",
        admin_api_token=ADMIN_TOKEN,
    )
    with emptied(settings.redis_url, *WORKER_QUEUES):
        app = create_app(pooled_settings)
        yield app
        app.extensions[REFRESH].close()
        app.extensions[ADMIN].close()
        close_db(app)


def test_the_api_answers_through_pgbouncer(
    app: Flask, sessions: sessionmaker[Session], pooler: Pooler
) -> None:
    with sessions.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_009)
        tokens = [add_token(s, contract, n) for n in range(1, 6)]
        for token in tokens:
            add_metadata(s, token, name=f"Token {token.token_number}")
        s.execute(
            update(Token)
            .where(Token.id == tokens[0].id)
            .values(updated_at=func.now() - timedelta(hours=2))
        )
    principal = contract.principal
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    failures: list[str] = []

    def browse() -> None:
        client = app.test_client()
        for n in range(RUNS):
            number = n % 5 + 1
            for url, headers in (
                (f"{V1}/nft/{principal}/{number}", {}),  # the fast path's raw reads
                (f"{V1}/nft/{principal}?limit=5", {}),
                (f"{V1}/", {}),
                (f"{V1}/admin/progress/{principal}", auth),
            ):
                response = client.get(url, headers=headers)
                if response.status_code != 200:
                    failures.append(f"{url}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=browse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert failures == [], pooler.log()[-2000:]
    client = app.test_client()
    assert client.get(f"{V1}/nft/{principal}/3").json["metadata"]["name"] == "Token 3"
    assert client.post(f"{V1}/nft/{principal}/1/refresh").status_code == 202
