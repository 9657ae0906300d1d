"""`make run` on a machine with no PostgreSQL and no Redis (docs/embedded-servers.md): the
defaults are pointed at ports where nothing listens, and deploy/run-local.sh starts the
embedded pair, runs the release step and the Procfile's processes against them, serves a
devnet token, and on Ctrl-C stops the processes and then the servers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.processes import ROOT, Running, free_port, process_env, running, wait_until

from devnet.scenario import NFT, Scenario
from shared.embedded.choice import postgres_answers, redis_answers
from shared.embedded.servers import stop_embedded

pytestmark = pytest.mark.e2e
DEADLINE_S = 180
STARTED = re.compile(r"^(PostgreSQL|Redis): nothing answers at .* started an embedded .* on (\S+) ")


def get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = ROOT / ".run" / "test-servers" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield path
    stop_embedded(path)  # those a failed test left running
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_run(tmp_path: Path, run_dir: Path) -> Iterator[tuple[str, Running]]:
    api_port = free_port()
    env = process_env(
        {
            "RUN_DIR": str(run_dir),
            "DEFAULT_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/tm",
            "DEFAULT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "STREAM_HOST": "127.0.0.1",
            "STREAM_PORT": str(free_port()),
            "DEVNET_NODE_PORT": str(free_port()),
            "DEVNET_METADATA_PORT": str(free_port()),
            "WORKER_METRICS_PORT": str(free_port()),
            "FLOWER_PORT": str(free_port()),
            "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
            "ADMIN_API_TOKEN": "e2e-admin-token",
            "CHAIN_POLL_INTERVAL_S": "1",
            "WORKER_CONCURRENCY": "8",
        }
    )
    env.pop("REDIS_URL", None)  # nothing configured: process_env drops DATABASE_URL and PG*
    with running("make-run", "deploy/run-local.sh", env, tmp_path) as script:
        yield f"http://127.0.0.1:{api_port}/metadata/v1", script


def test_make_run_serves_a_devnet_token_from_embedded_servers_and_stops_them(make_run) -> None:
    api_url, script = make_run

    def dead() -> str | None:
        return script.log_tail() if script.process.poll() is not None else None

    collection = next(c for c in Scenario.packaged("default").contracts if c.kind == NFT)

    def token_served() -> dict | None:
        response = get(f"{api_url}/nft/{collection.contract_id}/1")
        return response.json() if response is not None and response.status_code == 200 else None

    try:
        token = wait_until(token_served, DEADLINE_S, "a devnet token to be served", 0.5, dead)
    except AssertionError:
        print(script.log_tail(200))
        raise
    assert token["metadata"]["sip"] == 16
    assert token["token_uri"].endswith("/1.json")

    log = script.log_path.read_text()
    started = {m.group(1): m.group(2) for m in map(STARTED.match, log.splitlines()) if m}
    assert set(started) == {"PostgreSQL", "Redis"}, log[:2000]
    pg_url = f"postgresql://postgres@{started['PostgreSQL']}/postgres"
    redis_url = f"redis://{started['Redis']}/0"
    assert postgres_answers(pg_url)
    assert redis_answers(redis_url)

    os.killpg(script.process.pid, signal.SIGINT)  # Ctrl-C
    script.process.wait(60)
    log = script.log_path.read_text()
    assert "Redis: stopped the embedded server" in log
    assert "PostgreSQL: stopped the embedded server" in log
    # The processes stopped before the servers did.
    assert log.rindex("worker.1 stopped") < log.index("stopped the embedded server")
    assert not postgres_answers(pg_url)
    assert not redis_answers(redis_url)
