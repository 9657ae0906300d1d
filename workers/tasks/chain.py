"""Beat tasks: import new token contracts; hand due and stale jobs to the workers."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import current_app, shared_task

from shared.db import session_scope
from shared.queues import DISPATCH_JOBS_TASK, IMPORT_CONTRACTS_TASK
from shared.services.importer import import_next_batch
from shared.services.jobs import queue_due_jobs, requeue_stale_jobs
from shared.services.runner import dispatch
from workers.runtime import get_runtime

log = logging.getLogger(__name__)

IMPORT_BATCH_SIZE = 500
IMPORT_TIME_BUDGET_S = 30.0
DISPATCH_BATCH_SIZE = 5000


@shared_task(name=IMPORT_CONTRACTS_TASK, ignore_result=True)
def import_contracts() -> int:
    """Import batches until caught up or out of time; returns new contract jobs."""
    runtime = get_runtime(current_app)
    if runtime.chain is None:
        log.error("STACKS_API_DATABASE_URL is not set: nothing to import")
        return 0
    deadline = time.monotonic() + IMPORT_TIME_BUDGET_S
    created = 0
    while time.monotonic() < deadline:
        with session_scope(runtime.ctx.sessions) as session:
            batch = import_next_batch(session, runtime.chain, IMPORT_BATCH_SIZE)
        dispatch(runtime.ctx, batch.new_job_ids)
        created += len(batch.new_job_ids)
        if batch.checkpoint is not None:
            log.info("imported up to block %d", batch.checkpoint.block_height)
        if not batch.locked or batch.caught_up:
            break
    return created


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
