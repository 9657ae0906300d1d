"""Job messages on the real Redis broker: each lands on exactly one queue, by kind."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from support.broker import emptied

from shared.config import Settings
from shared.queues import (
    CONTRACTS_QUEUE,
    PROCESS_CONTRACT_TASK,
    PROCESS_TOKENS_TASK,
    REFRESH_QUEUE,
    TOKEN_BATCH_SIZE,
    TOKENS_QUEUE,
    JobMessage,
)
from workers.celery_app import create_celery_app
from workers.runtime import JobEnqueuer


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    with emptied(redis_url, CONTRACTS_QUEUE, TOKENS_QUEUE, REFRESH_QUEUE, "chain") as client:
        yield client


def test_contract_and_token_messages_go_to_their_own_queues(
    settings: Settings, broker: redis.Redis
) -> None:
    app = create_celery_app(replace(settings))
    JobEnqueuer(app)([JobMessage(1, True), JobMessage(2, False), JobMessage(3, False)])
    assert broker.llen(CONTRACTS_QUEUE) == 1
    assert broker.llen(TOKENS_QUEUE) == 1  # both token jobs in one batch message
    assert broker.llen("chain") == 0
    contract = json.loads(broker.lindex(CONTRACTS_QUEUE, 0))
    assert contract["headers"]["task"] == PROCESS_CONTRACT_TASK
    assert task_args(contract) == [1]
    tokens = json.loads(broker.lindex(TOKENS_QUEUE, 0))
    assert tokens["headers"]["task"] == PROCESS_TOKENS_TASK
    assert task_args(tokens) == [[2, 3]]  # ids only, nothing else
    app.close()


def test_token_jobs_are_batched_per_queue_in_order(settings: Settings, broker: redis.Redis) -> None:
    app = create_celery_app(replace(settings))
    new = [JobMessage(i, False) for i in range(1, TOKEN_BATCH_SIZE + 6)]
    refreshes = [JobMessage(100 + i, False, is_refresh=True) for i in range(3)]
    JobEnqueuer(app)(new + refreshes)
    batches = [task_args(json.loads(raw))[0] for raw in broker.lrange(TOKENS_QUEUE, 0, -1)]
    # LPUSH then BRPOP: the list holds the newest message first.
    assert list(reversed(batches)) == [
        list(range(1, TOKEN_BATCH_SIZE + 1)),
        list(range(TOKEN_BATCH_SIZE + 1, TOKEN_BATCH_SIZE + 6)),
    ]
    refresh = [task_args(json.loads(raw))[0] for raw in broker.lrange(REFRESH_QUEUE, 0, -1)]
    assert refresh == [[100, 101, 102]]
    app.close()


def task_args(message: dict) -> list:
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert kwargs == {}
    return args
