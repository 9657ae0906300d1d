"""The beat schedule prunes the change log on the chain queue (docs/change-feed.md#retention)."""

from __future__ import annotations

from shared.config import Settings
from shared.queues import (
    CHAIN_QUEUE,
    DELIVER_WEBHOOKS_TASK,
    DISPATCH_WEBHOOKS_TASK,
    PRUNE_CHANGES_TASK,
    WEBHOOKS_QUEUE,
    WORKER_QUEUES,
)
from workers.celery_app import (
    PRUNE_CHANGES_INTERVAL_S,
    WEBHOOKS_DISPATCH_INTERVAL_S,
    create_celery_app,
)


def test_beat_prunes_the_change_log_every_minute_on_the_chain_queue() -> None:
    app = create_celery_app(Settings())
    entry = app.conf.beat_schedule["prune-changes"]
    assert (entry["task"], entry["schedule"]) == (PRUNE_CHANGES_TASK, PRUNE_CHANGES_INTERVAL_S)
    assert app.conf.task_routes[PRUNE_CHANGES_TASK] == {"queue": CHAIN_QUEUE}


def test_webhooks_are_dispatched_and_delivered_on_the_last_queue() -> None:
    app = create_celery_app(Settings())
    entry = app.conf.beat_schedule["dispatch-webhooks"]
    assert (entry["task"], entry["schedule"]) == (
        DISPATCH_WEBHOOKS_TASK,
        WEBHOOKS_DISPATCH_INTERVAL_S,
    )
    assert WORKER_QUEUES[-1] == WEBHOOKS_QUEUE
    for task in (DISPATCH_WEBHOOKS_TASK, DELIVER_WEBHOOKS_TASK):
        assert app.conf.task_routes[task] == {"queue": WEBHOOKS_QUEUE}
    assert DELIVER_WEBHOOKS_TASK in app.conf.task_annotations
