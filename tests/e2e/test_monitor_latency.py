"""Block-to-API latency with the Procfile's real processes: a block with a new collection
appears in the Stacks API database, and we time how long until its tokens answer 200
(beat polls with CHAIN_POLL_INTERVAL_S=1; the simulated network runs in this process)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.processes import Running, free_port, process_env, procfile_command, running, wait_until

from devnet import chain_db
from devnet.chain_writer import ChainWriter
from devnet.scenario import Scenario, nft_collection
from devnet.server import Devnet

pytestmark = pytest.mark.e2e
SCENARIO = Scenario.build([nft_collection("genesis-apes", 3, 2)], chain_tip_height=3)
TRIALS = 8
TOKENS = 5


def get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:  # not up yet, or slow: poll again
        return None


def answers(url: str) -> bool:
    response = get(url)
    return response is not None and response.status_code == 200


@pytest.fixture
def stack(
    tmp_path: Path, database_url: str, stacks_api_database_url: str, redis_url: str
) -> Iterator[tuple[str, Devnet, list[Running]]]:
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
                "CHAIN_POLL_INTERVAL_S": "1",
                "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
                "WORKER_CONCURRENCY": "8",
            }
        )
        with (
            running("worker", procfile_command("worker"), env, tmp_path) as worker,
            running("beat", procfile_command("beat"), env, tmp_path) as beat,
            running("api", procfile_command("api"), env, tmp_path) as api,
        ):
            yield f"http://127.0.0.1:{api_port}/metadata/v1", net, [worker, beat, api]


def test_a_new_collection_answers_within_seconds_of_its_block(
    stack, stacks_api_database_url: str
) -> None:
    api_url, net, processes = stack

    def dead() -> str | None:
        gone = [p for p in processes if p.process.poll() is not None]
        return "\n".join(p.log_tail() for p in gone) or None

    first = SCENARIO.contracts[0]
    wait_until(
        lambda: answers(f"{api_url}/nft/{first.contract_id}/3"), 120, "cold start", 0.2, dead
    )

    first_token, all_tokens = [], []
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        writer = ChainWriter(conn, metadata_url=net.metadata_url)
        for trial in range(TRIALS):
            height = writer.head.height + 1
            collection = nft_collection(f"fresh-{trial}", TOKENS, height)
            net.deploy(collection)  # the node and metadata host know it before the block
            with conn.transaction():  # the block appears at once, as the API writes it
                block = writer.append_block()
                writer.deploy_contract(collection, block)
                writer.set_tip(block)
            appeared = time.monotonic()
            url = f"{api_url}/nft/{collection.contract_id}"
            try:
                wait_until(lambda u=url: answers(f"{u}/1"), 60, "token 1", 0.02, dead)
                first_token.append(time.monotonic() - appeared)
                for number in range(2, TOKENS + 1):
                    wait_until(
                        lambda u=url, n=number: answers(f"{u}/{n}"), 60, "tokens", 0.02, dead
                    )
                all_tokens.append(time.monotonic() - appeared)
            except AssertionError:
                print("\n".join(p.log_tail() for p in processes))
                raise
            time.sleep(0.137 * (trial + 1))  # land on different phases of the poll
    print(
        f"\nblock -> first token 200: median {statistics.median(first_token):.2f}s, "
        f"min {min(first_token):.2f}s, max {max(first_token):.2f}s; "
        f"all {TOKENS} tokens: median {statistics.median(all_tokens):.2f}s "
        f"(CHAIN_POLL_INTERVAL_S=1, {TRIALS} trials)"
    )
    assert statistics.median(first_token) < 5
