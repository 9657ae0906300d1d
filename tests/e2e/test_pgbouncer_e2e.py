"""End to end through PgBouncer in transaction mode (docs/replicas-and-poolers.md#poolers):
the Procfile's release step migrates a new database through the pooler, then the worker,
beat, api and stream processes run with DATABASE_URL (and the Stacks API database) behind it
and DATABASE_POOLER=pgbouncer; only the stream's LISTEN has a direct connection
(DATABASE_SESSION_URL). A 200-token collection on the simulated chain becomes queryable, and
the stream tells of its tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url
from support.pgbouncer import Pooler, pgbouncer
from support.processes import (
    ROOT,
    Running,
    free_port,
    process_env,
    procfile_command,
    run_release,
    running,
    wait_until,
)
from support.stream import EventStream, subscribed

from devnet.scenario import NFT, Scenario

pytestmark = pytest.mark.e2e
SCENARIO_FILE = ROOT / "devnet" / "scenarios" / "e2e-200.json"
DEADLINE_S = 240


def get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None


@pytest.fixture
def pooler(postgres) -> Iterator[Pooler]:
    # Fewer server connections than the worker has threads: they are shared for real.
    with pgbouncer(postgres.server_url, pool_size=6) as running_pooler:
        yield running_pooler


@pytest.fixture
def stack(
    tmp_path: Path, postgres, pooler: Pooler, stacks_api_database_url: str, redis_url: str
) -> Iterator[tuple[str, EventStream, list[Running]]]:
    name = f"tm_test_pgbouncer_e2e_{uuid.uuid4().hex[:8]}"
    direct_url = postgres.create(name)
    chain_name = make_url(stacks_api_database_url).database or ""
    node_port, metadata_port, api_port, stream_port = (free_port() for _ in range(4))
    env = process_env(
        {
            "DATABASE_URL": pooler.url(name),
            "DATABASE_POOLER": "pgbouncer",
            "DATABASE_SESSION_URL": direct_url,
            "REDIS_URL": redis_url,
            "STACKS_API_DATABASE_URL": pooler.url(chain_name),
            "STACKS_NODE_RPC_URL": f"http://127.0.0.1:{node_port}",
            "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "STREAM_HOST": "127.0.0.1",
            "STREAM_PORT": str(stream_port),
            "STREAM_POLL_S": "600",  # events come by notification, not by polling
            "STREAM_HEARTBEAT_S": "2",  # the subscriber's reads never wait long
            "CHAIN_POLL_INTERVAL_S": "1",
            "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
            "WORKER_CONCURRENCY": "8",
        }
    )
    release = run_release(env)
    assert release.returncode == 0, release.stderr[-3000:]
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
            running("stream", procfile_command("stream"), env, tmp_path) as stream,
            running("api", procfile_command("api"), env, tmp_path) as api,
        ):
            stream_url = f"http://127.0.0.1:{stream_port}/metadata/v1/changes/stream"
            wait_until(
                lambda: get(f"http://127.0.0.1:{stream_port}/healthz"),
                60,
                "the stream process",
                alive=lambda: stream.log_tail() if stream.process.poll() is not None else None,
            )
            # Subscribed before anything is indexed: every event comes live, after a NOTIFY
            # (the stream's safety poll is 10 minutes away).
            with (
                subscribed(stream_url, {"kind": "token_added"}) as events,
                running("worker", procfile_command("worker"), env, tmp_path) as worker,
                running("beat", procfile_command("beat"), env, tmp_path) as beat,
            ):
                yield (
                    f"http://127.0.0.1:{api_port}/metadata/v1",
                    events,
                    [net, stream, api, worker, beat],
                )


def test_every_process_works_through_pgbouncer(stack, pooler: Pooler) -> None:
    api_url, events, processes = stack
    started = time.monotonic()

    def dead() -> str | None:
        gone = [p for p in processes if p.process.poll() is not None]
        return "\n".join(p.log_tail() for p in gone) or None

    collection = next(c for c in Scenario.load(SCENARIO_FILE).contracts if c.kind == NFT)
    pending = set(range(1, collection.last_token_id + 1))

    def all_tokens_served() -> bool:
        for number in sorted(pending):
            response = get(f"{api_url}/nft/{collection.contract_id}/{number}")
            if response is None or response.status_code != 200:
                return False
            assert str(number) in response.json()["metadata"]["name"]
            pending.discard(number)
        return True

    try:
        wait_until(all_tokens_served, DEADLINE_S, "every token to answer 200", 0.5, dead)
    except AssertionError:
        print("\n".join(p.log_tail() for p in processes))
        print(pooler.log()[-3000:])
        raise
    added = events.events(collection.last_token_id)
    print(f"\n{len(added)} tokens indexed through pgbouncer in {time.monotonic() - started:.1f}s")
    assert {e.data["token_id"] for e in added} == {
        str(n) for n in range(1, collection.last_token_id + 1)
    }
    status = get(f"{api_url}/").json()
    assert status["tokens"] == {"nft": collection.last_token_id}
    assert status["chain_tip"]["block_height"] >= collection.block_height
    for process in processes:
        log = process.log_path.read_text(errors="replace")
        assert "prepared statement" not in log, process.log_tail()
