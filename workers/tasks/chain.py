"""Beat tasks: follow the chain; hand due and stale jobs to the workers."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app, shared_task

from shared.db import session_scope
from shared.queues import DISPATCH_JOBS_TASK, MONITOR_CHAIN_TASK
from shared.services import monitor
from shared.services.jobs import queue_due_jobs, requeue_stale_jobs
from workers.runtime import get_runtime

log = logging.getLogger(__name__)

DISPATCH_BATCH_SIZE = 5000


@shared_task(name=MONITOR_CHAIN_TASK, ignore_result=True)
def monitor_chain() -> int:
    """Apply new blocks of the Stacks API database (history import on a cold start);
    returns the number of blocks applied."""
    runtime = get_runtime(current_app)
    if runtime.chain is None:
        log.error("STACKS_API_DATABASE_URL is not set: no chain to follow")
        return 0
    params = monitor.MonitorSettings.from_settings(runtime.ctx.settings)
    return monitor.follow_chain(runtime.ctx, runtime.chain, params).blocks


@shared_task(name=DISPATCH_JOBS_TASK, ignore_result=True)
def dispatch_jobs() -> int:
    """Queue pending jobs that are due (retries) and recover queued jobs nobody holds."""
    runtime = get_runtime(current_app)
    settings = runtime.ctx.settings
    stale_after = timedelta(milliseconds=max(settings.job_queue_timeout_ms * 5, 600_000))
    with session_scope(runtime.ctx.sessions) as session:
        recovered = requeue_stale_jobs(session, stale_after)
        messages = queue_due_jobs(session, DISPATCH_BATCH_SIZE)
    if recovered:
        log.warning("returned %d stale queued jobs to pending", recovered)
    runtime.ctx.enqueue(messages)
    return len(messages)
