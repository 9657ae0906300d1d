"""The beat schedule prunes the change log on the chain queue (docs/change-feed.md#retention)."""

from __future__ import annotations

from shared.config import Settings
from shared.queues import CHAIN_QUEUE, PRUNE_CHANGES_TASK
from workers.celery_app import PRUNE_CHANGES_INTERVAL_S, create_celery_app


def test_beat_prunes_the_change_log_every_minute_on_the_chain_queue() -> None:
    app = create_celery_app(Settings())
    entry = app.conf.beat_schedule["prune-changes"]
    assert (entry["task"], entry["schedule"]) == (PRUNE_CHANGES_TASK, PRUNE_CHANGES_INTERVAL_S)
    assert app.conf.task_routes[PRUNE_CHANGES_TASK] == {"queue": CHAIN_QUEUE}
