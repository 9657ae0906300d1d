"""Beat task: prune the change log past its retention (docs/change-feed.md#retention)."""

from __future__ import annotations

from datetime import timedelta

from celery import current_app, shared_task

from shared.changes import prune_expired_changes
from shared.queues import PRUNE_CHANGES_TASK
from workers.runtime import get_runtime


@shared_task(name=PRUNE_CHANGES_TASK, ignore_result=True)
def prune_changes() -> int:
    """Delete entries older than CHANGES_RETENTION_DAYS; returns how many."""
    ctx = get_runtime(current_app).ctx
    retention = timedelta(days=ctx.settings.changes_retention_days)
    return prune_expired_changes(ctx.sessions, retention)
