"""Beat tasks: import new token contracts; hand due and stale jobs to the workers."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app, shared_task

from shared.db import session_scope
from shared.queues import DISPATCH_JOBS_TASK, IMPORT_CONTRACTS_TASK
from shared.services import importer
from shared.services.jobs import queue_due_jobs, requeue_stale_jobs
from workers.runtime import get_runtime

log = logging.getLogger(__name__)

IMPORT_BATCH_SIZE = 500
IMPORT_TIME_BUDGET_S = 30.0
DISPATCH_BATCH_SIZE = 5000


@shared_task(name=IMPORT_CONTRACTS_TASK, ignore_result=True)
def import_contracts() -> int:
    """Import new token contracts from the Stacks API database; returns new contract jobs."""
    runtime = get_runtime(current_app)
    if runtime.chain is None:
        log.error("STACKS_API_DATABASE_URL is not set: nothing to import")
        return 0
    return importer.import_contracts(
        runtime.ctx, runtime.chain, IMPORT_BATCH_SIZE, IMPORT_TIME_BUDGET_S
    )


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
