"""The Celery app: the beat schedule (docs/change-feed.md#retention) and how soon a dead
worker's messages come back (docs/job-engine.md#faults)."""

from __future__ import annotations

from shared.config import Settings
from shared.queues import (
    CHAIN_QUEUE,
    DELIVER_WEBHOOKS_TASK,
    DISPATCH_WEBHOOKS_TASK,
    PROCESS_TOKENS_TASK,
    PRUNE_CHANGES_TASK,
    WEBHOOKS_QUEUE,
    WORKER_QUEUES,
)
from workers.celery_app import (
    PRUNE_CHANGES_INTERVAL_S,
    WEBHOOKS_DISPATCH_INTERVAL_S,
    create_celery_app,
    visibility_timeout_s,
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


def test_a_dead_workers_unacknowledged_messages_return_soon_after_the_longest_job() -> None:
    settings = Settings()
    app = create_celery_app(settings)
    options = app.conf.broker_transport_options
    hard_limit = app.conf.task_annotations[PROCESS_TOKENS_TASK]["time_limit"]
    assert options["visibility_timeout"] == visibility_timeout_s(settings)
    assert hard_limit < options["visibility_timeout"] <= 120
    # Swept every 10 s, not kombu's default of every 100 s.
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 10


def test_the_visibility_timeout_follows_the_job_timeout() -> None:
    settings = Settings(job_queue_timeout_ms=300_000)
    assert visibility_timeout_s(settings) == 360
