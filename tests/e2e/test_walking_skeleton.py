"""End to end with the Procfile's real processes: a 200-token collection deployed on the
simulated chain becomes queryable over REST through beat -> worker -> Postgres -> API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.processes import (
    ROOT,
    Running,
    free_port,
    process_env,
    procfile_command,
    running,
    wait_until,
)

from devnet.scenario import NFT, Scenario

pytestmark = pytest.mark.e2e
SCENARIO_FILE = ROOT / "devnet" / "scenarios" / "e2e-200.json"
DEADLINE_S = 180


def get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None


@pytest.fixture
def stack(
    tmp_path: Path, database_url: str, stacks_api_database_url: str, redis_url: str
) -> Iterator[tuple[str, list[Running]]]:
    node_port, metadata_port, api_port = free_port(), free_port(), free_port()
    env = process_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "STACKS_API_DATABASE_URL": stacks_api_database_url,
            "STACKS_NODE_RPC_URL": f"http://127.0.0.1:{node_port}",
            "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "CHAIN_POLL_INTERVAL_S": "1",
            "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
            "WORKER_CONCURRENCY": "8",
        }
    )
    devnet = (
        f"python -m devnet serve --scenario {SCENARIO_FILE}"
        f" --database-url {stacks_api_database_url}"
        f" --node-port {node_port} --metadata-port {metadata_port}"
    )
    with running("devnet", devnet, env, tmp_path) as net:
        wait_until(
            lambda: get(f"http://127.0.0.1:{node_port}/v2/info"),
            60,
            "the simulated node",
            alive=lambda: net.log_tail() if net.process.poll() is not None else None,
        )
        with (
            running("worker", procfile_command("worker"), env, tmp_path) as worker,
            running("beat", procfile_command("beat"), env, tmp_path) as beat,
            running("api", procfile_command("api"), env, tmp_path) as api,
        ):
            yield f"http://127.0.0.1:{api_port}/metadata/v1", [net, worker, beat, api]


def test_a_200_token_collection_becomes_queryable_over_rest(stack) -> None:
    api_url, processes = stack
    started = time.monotonic()

    def dead() -> str | None:
        gone = [p for p in processes if p.process.poll() is not None]
        return "\n".join(p.log_tail() for p in gone) or None

    collection = next(c for c in Scenario.load(SCENARIO_FILE).contracts if c.kind == NFT)
    assert collection.last_token_id == 200
    pending = set(range(1, 201))

    def all_tokens_served() -> bool:
        for number in sorted(pending):
            response = get(f"{api_url}/nft/{collection.contract_id}/{number}")
            if response is None or response.status_code != 200:
                return False
            body = response.json()
            assert body["token_uri"].endswith(f"/{number}.json")
            assert body["metadata"]["sip"] == 16
            assert str(number) in body["metadata"]["name"]
            pending.discard(number)
        return True

    try:
        wait_until(all_tokens_served, DEADLINE_S, "all 200 tokens to answer 200", 0.5, dead)
    except AssertionError:
        print("\n".join(p.log_tail() for p in processes))
        raise
    elapsed = time.monotonic() - started
    print(f"\n200-token collection indexed end to end in {elapsed:.1f}s")

    status = get(f"{api_url}/").json()
    assert status["tokens"] == {"nft": 200}
    assert status["token_contracts"] == {"sip-009": 1}
    assert status["job_queue"] == {"done": 201}
    assert status["chain_tip"]["block_height"] >= collection.block_height
    check_marketplace_routes(api_url, collection, dead)


def check_marketplace_routes(api_url: str, collection: Any, dead: Callable[[], str | None]) -> None:
    """The marketplace routes (docs/marketplace-api.md) once the collection is indexed: the
    chain monitor has imported its owners from the simulated chain's history."""
    page_url = f"{api_url}/nft/{collection.contract_id}?limit=200"

    def every_token_fetched_and_owned() -> bool:
        page = get(page_url)
        if page is None or page.status_code != 200 or page.json()["total"] != 200:
            return False
        items = page.json()["results"]
        return all(item["metadata"] and (item["owner"] or item["burned"]) for item in items)

    wait_until(every_token_fetched_and_owned, DEADLINE_S, "owners of all 200 tokens", 0.5, dead)
    first = get(f"{api_url}/nft/{collection.contract_id}?limit=150")
    assert first is not None
    rest = get(f"{api_url}/nft/{collection.contract_id}?cursor={first.json()['next_cursor']}")
    assert rest is not None
    items = first.json()["results"] + rest.json()["results"]
    assert [item["token_id"] for item in items] == [str(n) for n in range(1, 201)]
    assert items[0]["mint_info"]["transaction_hash"].startswith("0x")
    owner = next(item["owner"] for item in items if item["owner"])
    gallery = get(f"{api_url}/owners/{owner}/nft?contract={collection.contract_id}")
    assert gallery is not None
    owned = [item["token_id"] for item in items if item["owner"] == owner]
    assert [item["token_id"] for item in gallery.json()["results"]] == owned[:100]
    batch = requests.post(
        f"{api_url}/tokens/batch",
        json={"tokens": [{"contract_id": collection.contract_id, "token_id": "0x7"}] * 2},
        timeout=5,
    )
    assert [item["token_id"] for item in batch.json()["results"]] == ["7", "7"]
    refresh = requests.post(f"{api_url}/nft/{collection.contract_id}/7/refresh", timeout=5)
    assert refresh.status_code == 429  # fetched moments ago: within the cooldown
    assert int(refresh.headers["Retry-After"]) > 0
