"""Webhooks end to end with the Procfile's real `worker`, `beat` and `api` processes
(docs/webhooks.md): a subscription created through the admin route, entries committed in
this test's own transactions, and a receiver on loopback that fails the first POSTs, then
recovers. It receives every entry once, in log order, signed; the subscription's position
reaches the newest entry; the worker's exporter counts the attempts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from support.http_server import Posted, Reply, ScriptedServer
from support.processes import Running, free_port, process_env, procfile_command, running, wait_until

from devnet import chain_db
from shared.changes import entry, record
from shared.db import make_engine, session_scope
from shared.models import ChangeKind
from shared.webhooks.signing import HEADER, verify

pytestmark = pytest.mark.e2e
TOKEN = "e2e-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "e2e-webhook-secret-0123456789"
PRINCIPAL = "SP2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS.hooked"
FAILURES = 3
DEADLINE_S = 45


class Stack:
    def __init__(self, api: str, metrics: str, processes: list[Running]) -> None:
        self.api = api
        self.metrics = metrics
        self.processes = processes

    def dead(self) -> str | None:
        gone = [p for p in self.processes if p.process.poll() is not None]
        return "\n".join(p.log_tail() for p in gone) or None

    def logs(self) -> str:
        return "\n".join(p.log_tail() for p in self.processes)


def get(url: str, **kwargs: Any) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5, **kwargs)
    except requests.RequestException:  # not up yet: poll again
        return None


def metric(url: str, name: str, **labels: str) -> float | None:
    response = get(url)
    if response is None or response.status_code != 200:
        return None
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url, pool_size=1)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def stack(
    tmp_path: Path, database_url: str, stacks_api_database_url: str, redis_url: str
) -> Iterator[Stack]:
    api_port, metrics_port = free_port(), free_port()
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        chain_db.create_schema(conn)  # a chain without blocks: the monitor has nothing to do
    env = process_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "STACKS_API_DATABASE_URL": stacks_api_database_url,
            "STACKS_NODE_RPC_URL": f"http://127.0.0.1:{free_port()}",
            "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver is on loopback
            "ADMIN_API_TOKEN": TOKEN,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "WORKER_METRICS_PORT": str(metrics_port),
            "WORKER_CONCURRENCY": "4",
            # Retries after about 1, 2 and 4 s instead of 10, 20 and 40.
            "WEBHOOK_BACKOFF_BASE_S": "1",
            "WEBHOOK_TIMEOUT_S": "5",
            "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
        }
    )
    with (
        running("worker", procfile_command("worker"), env, tmp_path) as worker,
        running("beat", procfile_command("beat"), env, tmp_path) as beat,
        running("api", procfile_command("api"), env, tmp_path) as api,
    ):
        yield Stack(
            f"http://127.0.0.1:{api_port}/metadata/v1",
            f"http://127.0.0.1:{metrics_port}/metrics",
            [worker, beat, api],
        )


def commit(sessions: sessionmaker[Session], first: int, count: int) -> list[int]:
    """One transaction of `count` entries; their ids."""
    with session_scope(sessions) as session:
        before = session.scalar(text("SELECT COALESCE(max(id), 0) FROM changes"))
        record(session, [entry(ChangeKind.TOKEN_ADDED, PRINCIPAL, first + n) for n in range(count)])
    with session_scope(sessions) as session:
        query = text("SELECT id FROM changes WHERE id > :before ORDER BY id")
        ids = list(session.scalars(query, {"before": before}))
    assert len(ids) == count  # this test is the only writer
    return ids


def written_by_worker(stack: Stack) -> float | None:
    return metric(stack.metrics, "token_metadata_changes_written_total", kind="token_added")


def ids_of(post: Posted) -> list[int]:
    return [int(change["id"]) for change in json.loads(post.body)["changes"]]


def test_a_failing_receiver_that_recovers_gets_every_entry_once_in_order(
    stack: Stack, sessions: sessionmaker[Session]
) -> None:
    wait_until(lambda: get(f"{stack.api}/"), 60, "the api", alive=stack.dead)
    # The worker exports the change-log counter (docs/change-feed.md#metrics), from 0: the
    # entries below are committed by this test, not by the worker.
    wait_until(
        lambda: written_by_worker(stack) is not None, 60, "the worker's metrics", alive=stack.dead
    )
    assert written_by_worker(stack) == 0

    with ScriptedServer() as receiver:
        url = receiver.script("/hook", [Reply(500, b"down")] * FAILURES + [Reply(204)])
        created = requests.post(
            f"{stack.api}/admin/webhooks",
            json={"url": url, "secret": SECRET},
            headers=AUTH,
            timeout=5,
        )
        assert created.status_code == 201, created.text
        subscription = created.json()
        assert subscription["last_delivered_id"] == 0  # an empty log: everything that follows

        def posts(least: int) -> list[Posted] | None:
            return list(receiver.posts) if len(receiver.posts) >= least else None

        try:
            committed = commit(sessions, 1, 5)
            wait_until(lambda: posts(1), DEADLINE_S, "the first POST", alive=stack.dead)
            committed += commit(sessions, 6, 150)  # more than one batch of 100
            wait_until(lambda: posts(2), DEADLINE_S, "a retry", alive=stack.dead)
            for n in range(5):
                committed += commit(sessions, 156 + n, 1)
            newest = committed[-1]

            def caught_up() -> dict[str, Any] | None:
                response = get(f"{stack.api}/admin/webhooks/{subscription['id']}", headers=AUTH)
                if response is None or response.status_code != 200:
                    return None
                body: dict[str, Any] = response.json()
                return body if body["last_delivered_id"] == newest else None

            state = wait_until(
                caught_up, DEADLINE_S, "the position to reach the newest entry", alive=stack.dead
            )
            assert state["status"] == "active"
            assert state["attempts"] == 0
            assert state["last_error"] is None
        except AssertionError:
            print(stack.logs())
            raise
        sent = list(receiver.posts)

    assert [p.status for p in sent[:FAILURES]] == [500] * FAILURES
    accepted = [p for p in sent if p.status == 204]
    assert len(accepted) == len(sent) - FAILURES
    for post in sent:
        assert post.path == "/hook"
        assert post.headers["Content-Type"] == "application/json"
        assert verify(SECRET, post.headers[HEADER], post.body), post.headers[HEADER]
        assert not verify("another-secret-0123456789", post.headers[HEADER], post.body)
    delivered = [i for post in accepted for i in ids_of(post)]
    assert delivered == committed  # every entry once, in log order
    assert all(a < b for a, b in pairwise(delivered))
    assert all(len(ids_of(post)) <= 100 for post in sent)
    # A batch reaching back into a failed attempt's entries says it may be a redelivery.
    failed_through = max(max(ids_of(post)) for post in sent[:FAILURES])
    for post in accepted:
        body = json.loads(post.body)
        assert body["subscription_id"] == subscription["id"]
        assert body["redelivery"] == (ids_of(post)[0] <= failed_through)
        assert all(change["contract_id"] == PRINCIPAL for change in body["changes"])

    history = requests.get(
        f"{stack.api}/admin/webhooks/{subscription['id']}/deliveries", headers=AUTH, timeout=5
    ).json()["results"]
    outcomes = ["failed"] * FAILURES + ["delivered"] * len(accepted)
    assert [d["outcome"] for d in reversed(history)] == outcomes
    posts_total = "token_metadata_webhook_deliveries_total"
    assert metric(stack.metrics, posts_total, outcome="failed") == FAILURES
    assert metric(stack.metrics, posts_total, outcome="delivered") == len(accepted)
