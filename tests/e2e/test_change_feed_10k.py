"""The change feed at scale with the Procfile's real processes: a consumer that pages
`GET /changes` from zero, on a thread of its own, while beat, the worker and the API index the
benchmark's chain (10,000 NFTs in 3 collections, 5 FTs, 2 SFTs of 50 tokens) and then refresh
every token with changed documents, ends with exactly the API's state of every token
(docs/change-feed.md#consumers). The simulated network runs in this process, so that the
test can change the documents it serves before the refresh.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, create_engine, text
from support.feed_consumer import PREFIX, Consumer, Key
from support.processes import Running, free_port, process_env, procfile_command, running, wait_until

from bench.run import expected_tokens, parse_args
from bench.run import scenario as bench_scenario
from devnet import chain_db
from devnet.scenario import FT, NFT, SFT, Scenario
from devnet.server import Devnet

pytestmark = pytest.mark.e2e
OPTIONS = parse_args(["--scenario", "one-host", "--nft-tokens", "10000", "--skip-api"])[0]
SCENARIO = Scenario.from_dict(bench_scenario(OPTIONS), source="bench/run.py one-host")
TOKENS = expected_tokens(OPTIONS)  # 10,105
JOBS = TOKENS + len(SCENARIO.token_contracts)  # a job per token and per contract
ADMIN_TOKEN = "feed-10k-admin-token"
REPAINTED = "Repainted for the refresh"
INDEXING_DEADLINE_S = 120
REFRESH_DEADLINE_S = 120
CATCH_UP_DEADLINE_S = 60


@dataclass
class Stack:
    base: str  # the API's root URL
    net: Devnet
    processes: list[Running]
    engine: Engine  # on the service's database, to see when jobs are done
    counts: tuple[int, ...] = ()  # the last `SETTLED` answer, for a timeout's message

    def dead(self) -> str | None:
        gone = [p for p in self.processes if p.process.poll() is not None]
        return "\n".join(p.log_tail() for p in gone) or None


@pytest.fixture
def stack(
    tmp_path: Path, database_url: str, stacks_api_database_url: str, redis_url: str
) -> Iterator[Stack]:
    api_port = free_port()
    with Devnet(SCENARIO) as net:
        with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
            chain_db.create_schema(conn)
            chain_db.seed(conn, SCENARIO, metadata_url=net.metadata_url)
        env = process_env(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "STACKS_API_DATABASE_URL": stacks_api_database_url,
                "STACKS_NODE_RPC_URL": net.node_url,
                "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
                "API_HOST": "127.0.0.1",
                "API_PORT": str(api_port),
                "API_ACCESS_LOG": "/dev/null",
                "LOG_LEVEL": "WARNING",
                "WORKER_METRICS_PORT": "0",
                "ADMIN_API_TOKEN": ADMIN_TOKEN,
                "CHAIN_POLL_INTERVAL_S": "1",
                "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
            }
        )
        with (
            running("worker", procfile_command("worker"), env, tmp_path) as worker,
            running("beat", procfile_command("beat"), env, tmp_path) as beat,
            running("api", procfile_command("api"), env, tmp_path) as api,
        ):
            engine = create_engine(database_url)
            try:
                yield Stack(f"http://127.0.0.1:{api_port}", net, [worker, beat, api], engine)
            finally:
                engine.dispose()


class Following:
    """The consumer on a thread of its own, catching up again and again until stopped."""

    def __init__(self, base: str) -> None:
        self.http = requests.Session()
        self.consumer = Consumer.over_http(self.http, base, limit=1000)
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._follow, name="feed-consumer", daemon=True)

    def _follow(self) -> None:
        try:
            while not self.stopping.is_set():
                self.consumer.catch_up()
                self.stopping.wait(0.05)  # polling interval when caught up
        except BaseException as error:  # reported by the test's thread
            self.error = error

    def failed(self) -> str | None:
        return f"the consumer failed: {self.error!r}" if self.error else None

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the consumer did not stop within 60 s"
        self.http.close()
        if self.error:
            raise self.error


def get_json(url: str, **params: Any) -> Any:
    try:
        response = requests.get(url, params=params, timeout=30)
    except requests.RequestException:  # not up yet: poll again
        return None
    return response.json() if response.status_code == 200 else None


def settled(stack: Stack) -> bool:
    """Every token known and every job done, and every collection's owners imported (read from
    the database: the status route's counts are cached for a few seconds)."""
    with stack.engine.connect() as conn:
        tokens, done, jobs, imports_left = stack.counts = tuple(conn.execute(text(SETTLED)).one())
    return bool(tokens == TOKENS and done == jobs == JOBS and imports_left == 0)


SETTLED = """
    SELECT (SELECT count(*) FROM tokens),
           (SELECT count(*) FROM jobs WHERE status = 'done'),
           (SELECT count(*) FROM jobs),
           (SELECT count(*) FROM chain_ownership_imports WHERE block_height IS NULL)"""


def latest_change_id(stack: Stack) -> int:
    with stack.engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM changes")).scalar_one())


def repainted(scenario: Scenario) -> Scenario:
    """Every contract's documents with another description."""
    contracts = tuple(
        dataclasses.replace(c, collection=dataclasses.replace(c.collection, description=REPAINTED))
        for c in scenario.contracts
    )
    return dataclasses.replace(scenario, contracts=contracts)


def refresh_everything(base: str) -> None:
    """The admin refresh of every token of every contract (README, Admin API)."""
    for contract in SCENARIO.token_contracts:
        response = requests.post(
            f"{base}{PREFIX}/admin/refresh-token",
            json={"contractId": contract.contract_id},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 200, (contract.contract_id, response.text)


def api_state(base: str) -> dict[Key, dict[str, Any]]:
    """Every token the API serves: NFTs from their collection's pages (cursor paging), FTs and
    SFTs from the batch route."""
    http = requests.Session()
    state: dict[Key, dict[str, Any]] = {}
    wanted: list[tuple[Key, dict[str, str]]] = []  # an FT's entries name it as token 1
    for contract in SCENARIO.token_contracts:
        if contract.kind == NFT:
            cursor: str | None = None
            while True:
                params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
                url = f"{base}{PREFIX}/nft/{contract.contract_id}"
                response = http.get(url, params=params, timeout=30)
                assert response.status_code == 200, response.text
                page = response.json()
                state |= {(i["contract_id"], i["token_id"]): i for i in page["results"]}
                cursor = page["next_cursor"]
                if not cursor:
                    break
        elif contract.kind == FT:
            wanted.append(((contract.contract_id, "1"), {"contract_id": contract.contract_id}))
        elif contract.kind == SFT:
            for token in contract.sft_tokens:
                number = str(token.token_id)
                entry = {"contract_id": contract.contract_id, "token_id": number}
                wanted.append(((contract.contract_id, number), entry))
    for start in range(0, len(wanted), 100):
        chunk = wanted[start : start + 100]
        body = {"tokens": [entry for _, entry in chunk]}
        response = http.post(f"{base}{PREFIX}/tokens/batch", json=body, timeout=30)
        assert response.status_code == 200, response.text
        for (key, _), item in zip(chunk, response.json()["results"], strict=True):
            assert "token_type" in item, item
            state[key] = item
    http.close()
    return state


def differences(mine: dict[Key, Any], theirs: dict[Key, Any]) -> str:
    missing = sorted(set(theirs) - set(mine), key=str)
    extra = sorted(set(mine) - set(theirs), key=str)
    unequal = [k for k in sorted(set(mine) & set(theirs), key=str) if mine[k] != theirs[k]]
    lines = [
        f"{len(missing)} tokens the consumer lacks, e.g. {missing[:3]}",
        f"{len(extra)} tokens the API does not serve, e.g. {extra[:3]}",
        f"{len(unequal)} items differ",
    ]
    for key in unequal[:2]:
        fields = sorted(
            f for f in {*mine[key], *theirs[key]} if mine[key].get(f) != theirs[key].get(f)
        )
        lines += [
            f"{key} {f}: consumer {mine[key].get(f)!r}, API {theirs[key].get(f)!r}" for f in fields
        ]
    return "\n".join(lines)


def test_a_consumer_paging_from_zero_through_10k_tokens_ends_with_the_api_s_state(
    stack: Stack,
) -> None:
    started = time.monotonic()
    wait_until(
        lambda: get_json(f"{stack.base}{PREFIX}/"), 60, "the api to answer", alive=stack.dead
    )
    following = Following(stack.base)
    following.thread.start()

    def dead() -> str | None:
        return following.failed() or stack.dead()

    def timed(what: str, check: Callable[[], object], deadline: float) -> float:
        begun = time.monotonic()
        try:
            wait_until(check, deadline, what, 0.25, dead)
        except AssertionError:
            print("\n".join(p.log_tail() for p in stack.processes))
            tokens, done, jobs, imports = stack.counts or ("?",) * 4
            print(
                f"tokens {tokens}/{TOKENS}, jobs done {done}/{jobs} (of {JOBS}), "
                f"ownership imports left {imports}; consumer at {following.consumer.after}"
            )
            raise
        return time.monotonic() - begun

    read_while_indexing = 0  # where the consumer was at the last poll that found work left

    def indexed() -> bool:
        nonlocal read_while_indexing
        position = following.consumer.after
        done = settled(stack)
        if not done:
            read_while_indexing = position
        return done

    try:
        indexing_s = timed("every token indexed", indexed, INDEXING_DEADLINE_S)
        before_refresh = latest_change_id(stack)
        stack.net.scenario = repainted(SCENARIO)  # the documents change for the refresh
        refresh_everything(stack.base)
        refresh_s = timed("every token refreshed", lambda: settled(stack), REFRESH_DEADLINE_S)
        latest = latest_change_id(stack)
        catch_up_s = timed(
            f"the consumer to reach id {latest}",
            lambda: following.consumer.after >= latest,
            CATCH_UP_DEADLINE_S,
        )
    finally:
        following.stop()
    consumer = following.consumer
    consumer.catch_up()  # nothing more was written: it stays where it was
    assert consumer.after == latest
    state = api_state(stack.base)
    print(
        f"\n{TOKENS:,} tokens: indexed in {indexing_s:.1f}s (the consumer at id "
        f"{read_while_indexing:,} just before), refreshed in {refresh_s:.1f}s, the consumer "
        f"at the newest id {catch_up_s:.1f}s later; {len(consumer.seen):,} entries; "
        f"{time.monotonic() - started:.1f}s in all"
    )

    assert read_while_indexing > 0, "the consumer read nothing while the tokens were indexed"
    assert len(state) == TOKENS
    assert consumer.items == state, differences(consumer.items, state)
    assert all(i["metadata"]["description"] == REPAINTED for i in state.values())

    ids = [entry.id for entry in consumer.seen]
    assert all(a < b for a, b in itertools.pairwise(ids)), "ids not strictly increasing"
    assert ids[-1] == latest
    kinds: dict[Key, set[str]] = {}
    repaints: set[Key] = set()
    for entry in consumer.seen:
        kinds.setdefault(entry.key, set()).add(entry.kind)
        if entry.kind == "metadata_updated" and entry.id > before_refresh:
            assert entry.details == {"document_changed": True}, entry
            repaints.add(entry.key)
    lacking = [k for k in state if not {"token_added", "metadata_updated"} <= kinds.get(k, set())]
    assert not lacking, f"{len(lacking)} tokens without token_added and metadata_updated"
    assert repaints == set(state), f"{len(set(state) - repaints)} tokens without a refresh entry"
