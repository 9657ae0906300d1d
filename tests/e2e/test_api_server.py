"""The Procfile's `api` process, really started: JSON access lines with the request target,
`/metrics` adding up both worker processes, a killed worker started again, SIGTERM honoured."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support.processes import Running, child_pids, running_api, wait_until

pytestmark = pytest.mark.e2e
REQUESTS = 40


def get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None


def requests_counted(base: str) -> float | None:
    response = get(f"{base}/metrics")
    if response is None or response.status_code != 200:
        return None
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "flask_http_request_total"
    )


def started_workers(process: Running) -> int:
    lines = process.log_path.read_text(errors="replace").splitlines()
    return sum('"message": "Started worker-' in line for line in lines)


@pytest.fixture
def api(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[tuple[str, Running]]:
    with running_api(tmp_path, database_url, redis_url, API_WORKERS="2", LOG_FORMAT="json") as (
        base,
        process,
    ):
        # A worker still loading the app would miss a stop signal (docs/api-server.md).
        wait_until(lambda: started_workers(process) == 2, 60, "both workers to start")
        yield base, process


def test_access_lines_are_json_with_the_request_target(api: tuple[str, Running]) -> None:
    base, process = api
    response = get(f"{base}/metadata/v1/nft/SP000/abc?locale=en")
    assert response is not None
    assert response.status_code == 400

    def access_line() -> dict[str, object] | None:
        for line in process.log_path.read_text(errors="replace").splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("logger") == "granian.access" and "/nft/SP000/abc" in entry["message"]:
                return entry
        return None

    entry = wait_until(access_line, 10, "the request's access line", alive=lambda: None)
    assert '"GET /metadata/v1/nft/SP000/abc?locale=en HTTP/1.1" 400' in str(entry["message"])
    assert entry["level"] == "INFO"


def test_metrics_add_up_every_worker_process(api: tuple[str, Running]) -> None:
    base, process = api
    assert len(child_pids(process.process.pid)) == 2
    before = requests_counted(base)
    assert before is not None
    for _ in range(REQUESTS):
        response = get(f"{base}/metadata/v1/")
        assert response is not None
        assert response.status_code == 200
    # Each request may land on either worker; the sum across both counts every one.
    after = requests_counted(base)
    assert after == before + REQUESTS


def test_a_killed_worker_is_started_again(api: tuple[str, Running]) -> None:
    base, process = api
    first, _ = child_pids(process.process.pid)
    os.kill(first, signal.SIGKILL)

    def replaced() -> bool:
        current = child_pids(process.process.pid)
        return len(current) == 2 and first not in current

    wait_until(replaced, 30, "a new worker in place of the killed one", alive=lambda: None)
    wait_until(lambda: get(f"{base}/metadata/v1/"), 30, "the api to answer again")
    assert process.process.poll() is None


def test_sigterm_stops_the_server_and_its_workers(api: tuple[str, Running]) -> None:
    _base, process = api
    workers = child_pids(process.process.pid)
    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    process.process.wait(30)
    assert time.monotonic() - started < 30
    assert process.process.returncode == 0
    for pid in workers:
        wait_until(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 10, f"worker {pid} to exit")
