"""The worker side for real: beat's webhook dispatcher sends delivery messages to the
webhooks queue of the real Redis broker, the delivery task POSTs the entries, and a message
lost with a flushed Redis is sent again from the state in Postgres (docs/webhooks.md)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from celery._state import get_current_app
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from support.broker import emptied
from support.http_server import Reply, ScriptedServer

import workers.runtime
from shared.changes import entry, record
from shared.config import Settings
from shared.db import session_scope
from shared.models import ChangeKind
from shared.queues import DELIVER_WEBHOOKS_TASK, WEBHOOKS_QUEUE
from shared.webhooks.subscriptions import create_subscription, get_subscription
from workers.celery_app import create_celery_app
from workers.tasks.webhooks import deliver_webhooks, dispatch_webhooks

PRINCIPAL = "SP2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS.hello"


@pytest.fixture
def worker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The current Celery app as a worker process has it, its runtime built from settings."""
    settings = replace(settings, stacks_node_rpc_url="http://127.0.0.1:9", webhook_timeout_s=2)
    monkeypatch.setattr(workers.runtime, "_runtime", None)
    previous = get_current_app()
    app = create_celery_app(settings)
    app.set_current()
    try:
        yield
    finally:
        if workers.runtime._runtime is not None:
            runtime = workers.runtime._runtime[1]
            runtime.webhooks.close()
            runtime.processor.metadata.fetcher.close()
            for engine in runtime.engines:
                engine.dispose()
        previous.set_current()
        app.close()


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    with emptied(redis_url, WEBHOOKS_QUEUE) as client:
        yield client


def queued(broker: redis.Redis) -> list[Any]:
    messages = []
    while (raw := broker.rpop(WEBHOOKS_QUEUE)) is not None:
        message = json.loads(raw)
        assert message["headers"]["task"] == DELIVER_WEBHOOKS_TASK
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append(args)
    return messages


def write(sessions: sessionmaker[Session], count: int) -> None:
    with session_scope(sessions) as session:
        record(session, [entry(ChangeKind.TOKEN_ADDED, PRINCIPAL, n) for n in range(count)])


def test_dispatched_deliveries_reach_the_receiver_and_lost_messages_are_sent_again(
    worker: None, broker: redis.Redis, sessions: sessionmaker[Session]
) -> None:
    with ScriptedServer() as receiver:
        url = receiver.script("/hook", [Reply(200)])
        with session_scope(sessions) as session:
            subscription_id = create_subscription(session, url, "a-secret-of-16-chars")["id"]
        write(sessions, 3)

        assert dispatch_webhooks() == 1
        lag = REGISTRY.get_sample_value(
            "token_metadata_webhook_feed_lag_entries", {"subscription": str(subscription_id)}
        )
        assert lag == 3
        broker.delete(WEBHOOKS_QUEUE)  # Redis flushed: the message is lost
        assert dispatch_webhooks() == 0  # sent a moment ago
        with session_scope(sessions) as session:
            session.execute(
                text("UPDATE webhook_subscriptions SET enqueued_at = now() - interval '2 min'")
            )
        assert dispatch_webhooks() == 1
        assert queued(broker) == [[subscription_id]]

        assert deliver_webhooks(subscription_id) == 3

        (posted,) = receiver.posts
        assert len(json.loads(posted.body)["changes"]) == 3
        assert dispatch_webhooks() == 0  # caught up
        lag = REGISTRY.get_sample_value(
            "token_metadata_webhook_feed_lag_entries", {"subscription": str(subscription_id)}
        )
        assert lag == 0
        delivered = REGISTRY.get_sample_value(
            "token_metadata_webhook_deliveries_total", {"outcome": "delivered"}
        )
        assert delivered is not None
        assert delivered >= 1
        with session_scope(sessions) as session:
            state = get_subscription(session, subscription_id)
        assert state is not None
        assert state["attempts"] == 0
