"""Beat tasks: follow the chain; hand due and stale jobs to the workers."""

from __future__ import annotations

import logging

from celery import current_app, shared_task

from shared.chain import monitor
from shared.jobs.dispatch import dispatch_due
from shared.queues import DISPATCH_JOBS_TASK, MONITOR_CHAIN_TASK
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


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
    """Recover stranded jobs, then queue and send the due ones; returns how many jobs."""
    return dispatch_due(get_runtime(current_app).dispatcher).jobs
