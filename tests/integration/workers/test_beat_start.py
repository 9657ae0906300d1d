"""Beat, the Procfile's real process: it checks the chain as soon as it starts, not one
CHAIN_POLL_INTERVAL_S later (a fresh deployment starts importing at once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.broker import emptied
from support.processes import process_env, procfile_command, running, wait_until

from shared.queues import CHAIN_QUEUE, MONITOR_CHAIN_TASK


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    with emptied(redis_url, CHAIN_QUEUE) as client:
        yield client


def queued_tasks(broker: redis.Redis) -> list[str]:
    return [json.loads(raw)["headers"]["task"] for raw in broker.lrange(CHAIN_QUEUE, 0, -1)]


def test_beat_sends_a_chain_check_as_soon_as_it_starts(
    tmp_path: Path, database_url: str, redis_url: str, broker: redis.Redis
) -> None:
    env = process_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "STACKS_API_DATABASE_URL": database_url,
            "STACKS_NODE_RPC_URL": "http://127.0.0.1:9",
            "CHAIN_POLL_INTERVAL_S": "3600",  # the schedule alone would wait an hour
            "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
        }
    )
    with running("beat", procfile_command("beat"), env, tmp_path) as beat:
        wait_until(
            lambda: MONITOR_CHAIN_TASK in queued_tasks(broker),
            60,
            "beat to send the first chain check",
            alive=lambda: beat.log_tail() if beat.process.poll() is not None else None,
        )
    assert queued_tasks(broker).count(MONITOR_CHAIN_TASK) == 1
