"""A malformed setting stops each process at start with one line naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.processes import ROOT, process_env


@pytest.mark.parametrize(
    ("entry", "variable", "value"),
    [
        ("import workers", "JOB_QUEUE_MAX_RETRIES", "ten"),
        ("import api.wsgi", "API_PORT", "http"),
        ("import api.wsgi", "DATABASE_URL", "mysql://db/x"),
        ("import workers", "REDIS_URL", "localhost"),
    ],
)
def test_bad_setting_stops_the_process_naming_the_variable(
    entry: str, variable: str, value: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", entry],
        cwd=ROOT,
        env=process_env({variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: ")
    assert variable in lines[0]


def test_worker_without_a_chain_to_read_refuses_to_start(redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "threads"],
        cwd=ROOT,
        env=process_env({"REDIS_URL": redis_url}),  # no STACKS_NODE_RPC_URL
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "configuration error: STACKS_NODE_RPC_URL is not set" in result.stderr
