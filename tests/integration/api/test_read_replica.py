"""DATABASE_READ_URL against a real streaming replica (docs/replicas-and-poolers.md): a primary
made with initdb and a replica made with pg_basebackup -R, both servers of the test's own.

Pausing the replica's replay (pg_wal_replay_pause) makes its lag as long as a test needs:
what the public routes answer then comes from the replica, what the admin and refresh
routes answer from the primary, and once replay resumes and the replica has caught up the
public routes see the new rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, update
from sqlalchemy.orm import Session, sessionmaker
from support.broker import emptied
from support.builders import add_contract, add_token
from support.pg_cluster import ReplicatedPair, primary_server, programs_for, replica_of

from api.app import create_app
from api.db import close_db
from api.resources.admin import ADMIN
from api.resources.refresh import REFRESH
from shared.config import Settings
from shared.db import make_engine
from shared.embedded.servers import Servers
from shared.models import ChainTip, Token
from shared.queues import WORKER_QUEUES

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = "tm_replica_template"
ADMIN_TOKEN = "replica-test-admin"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
V1 = "/metadata/v1"


@pytest.fixture(scope="module")
def pair(servers: Servers) -> Iterator[ReplicatedPair]:
    """A migrated template on a new primary, then a replica of it (with the programs of the
    run's PostgreSQL)."""
    with primary_server(programs_for(servers)) as primary:
        with primary.connect() as conn:
            conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
        config = Config(str(ROOT / "alembic.ini"))
        config.set_main_option("sqlalchemy.url", primary.url(TEMPLATE))
        command.upgrade(config, "head")
        with replica_of(primary) as replica:
            yield ReplicatedPair(primary, replica)


@pytest.fixture
def database(pair: ReplicatedPair) -> str:
    """A database of this test's own on the primary, replayed by the replica."""
    name = f"tm_replica_{uuid.uuid4().hex[:8]}"
    with pair.primary.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    pair.wait_caught_up()
    return name


@pytest.fixture
def primary_db(pair: ReplicatedPair, database: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pair.primary.url(database), pool_size=2)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def app(pair: ReplicatedPair, database: str, redis_url: str) -> Iterator[Flask]:
    settings = replace(
        Settings(),
        database_url=pair.primary.url(database),
        database_read_url=pair.replica.url(database),
        redis_url=redis_url,
        admin_api_token=ADMIN_TOKEN,
    )
    with emptied(redis_url, *WORKER_QUEUES):
        app = create_app(settings)
        app.extensions["token_metadata_counts"].ttl_s = 0  # every status read counts afresh
        yield app
        app.extensions[REFRESH].close()
        app.extensions[ADMIN].close()
        close_db(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def paused(pair: ReplicatedPair) -> Iterator[None]:
    """The replica stops replaying (it still receives WAL) until the test resumes it."""
    pair.pause_replay()
    yield
    pair.resume_replay()


def test_public_reads_come_from_the_replica_and_the_admin_and_refresh_from_the_primary(
    pair: ReplicatedPair, primary_db: sessionmaker[Session], client: FlaskClient, paused: None
) -> None:
    with primary_db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, 1)
        s.execute(  # fetched long ago: outside the refresh cooldown
            update(Token)
            .where(Token.id == token.id)
            .values(updated_at=func.now() - timedelta(hours=2))
        )
    principal = contract.principal

    # The replica has not replayed the insert: the public routes do not know the contract.
    assert client.get(f"{V1}/nft/{principal}/1").status_code == 404
    assert client.get(f"{V1}/nft/{principal}").status_code == 404
    assert "tokens" not in client.get(f"{V1}/").json
    # The admin routes read the primary, the refresh (a write) finds the token there.
    progress = client.get(f"{V1}/admin/progress/{principal}", headers=AUTH)
    assert progress.status_code == 200
    assert progress.json["tokens"]["total"] == 1
    refresh = client.post(f"{V1}/nft/{principal}/1/refresh")
    assert refresh.status_code == 202, refresh.json

    pair.resume_replay()
    pair.wait_caught_up()
    answer = client.get(f"{V1}/nft/{principal}/1")
    assert answer.status_code == 200
    assert client.get(f"{V1}/").json["tokens"] == {"nft": 1}


def test_a_token_etag_describes_the_body_the_lagging_replica_sends(
    pair: ReplicatedPair, primary_db: sessionmaker[Session], client: FlaskClient
) -> None:
    with primary_db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, 1, uri="https://example.com/old.json")
    pair.wait_caught_up()
    url = f"{V1}/nft/{contract.principal}/1"
    first = client.get(url)
    assert first.status_code == 200
    old_etag = first.headers["ETag"]

    pair.pause_replay()
    try:
        with primary_db.begin() as s:
            s.execute(
                update(Token)
                .where(Token.id == token.id)
                .values(uri="https://example.com/new.json", updated_at=func.now())
            )
        lagging = client.get(url)
        # The replica's row: its old body under its old ETag, and a 304 for it.
        assert lagging.headers["ETag"] == old_etag
        assert lagging.json["token_uri"] == "https://example.com/old.json"
        assert client.get(url, headers={"If-None-Match": old_etag}).status_code == 304
    finally:
        pair.resume_replay()
    pair.wait_caught_up()
    caught_up = client.get(url, headers={"If-None-Match": old_etag})
    assert caught_up.status_code == 200
    assert caught_up.headers["ETag"] != old_etag
    assert caught_up.json["token_uri"] == "https://example.com/new.json"


def test_the_status_etag_is_its_bodys_chain_tip_while_the_replica_lags(
    pair: ReplicatedPair, primary_db: sessionmaker[Session], client: FlaskClient, paused: None
) -> None:
    with primary_db.begin() as s:
        s.execute(update(ChainTip).values(block_height=50, index_block_hash="0x50"))
        add_token(s, add_contract(s))
    lagging = client.get(f"{V1}/")
    assert lagging.headers["ETag"] == '"1"'  # the replica's tip, as in its body
    assert lagging.json["chain_tip"] is None
    assert "tokens" not in lagging.json  # counts from the replica too, not the primary
    assert client.get(f"{V1}/", headers={"If-None-Match": '"1"'}).status_code == 304

    pair.resume_replay()
    pair.wait_caught_up()
    caught_up = client.get(f"{V1}/", headers={"If-None-Match": '"1"'})
    assert caught_up.status_code == 200
    assert caught_up.headers["ETag"] == '"50"'
    assert caught_up.json["chain_tip"] == {"block_height": 50, "index_block_hash": "0x50"}
    assert caught_up.json["tokens"] == {"nft": 1}
