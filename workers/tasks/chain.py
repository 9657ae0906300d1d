"""Beat tasks: follow the chain; hand due and stale jobs to the workers."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import timedelta

from celery import current_app, shared_task

from shared.chain import monitor
from shared.db import session_scope
from shared.jobs.recovery import (
    broker_lost_its_data,
    forget_dispatches,
    reap_stranded_jobs,
    recover_interrupted_dispatches,
    sending,
)
from shared.jobs.transitions import queue_due_jobs
from shared.queues import DISPATCH_JOBS_TASK, MONITOR_CHAIN_TASK
from workers.runtime import get_runtime
from workers.tasks.images import enqueue_image_jobs, queue_due_images

log = logging.getLogger(__name__)

DISPATCH_BATCH_SIZE = 5000
# A queued job nobody claimed for this long lost its message (a crash between the commit and
# the send); a flushed or restarted Redis is noticed at once instead.
LOST_MESSAGE_AFTER = timedelta(minutes=10)


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
    """Recover stranded jobs (dead workers, lost messages), then queue the due ones."""
    runtime = get_runtime(current_app)
    broker_reset = broker_lost_its_data(runtime.redis)
    with ExitStack() as in_flight:
        with session_scope(runtime.ctx.sessions) as session:
            interrupted, records = recover_interrupted_dispatches(session, runtime.redis)
            reaped = reap_stranded_jobs(session, broker_reset, LOST_MESSAGE_AFTER)
            messages = queue_due_jobs(session, DISPATCH_BATCH_SIZE)
            image_jobs = queue_due_images(session, runtime.ctx.settings, broker_reset)
            # Recorded before the commit, removed after the send: a crash in between is
            # noticed by the next dispatch a minute later instead of after LOST_MESSAGE_AFTER.
            in_flight.enter_context(sending(runtime.redis, [m.job_id for m in messages]))
        forget_dispatches(runtime.redis, records)
        if reaped.expired_leases or reaped.lost_messages or interrupted:
            log.warning(
                "recovered %d jobs of dead workers, %d jobs of an interrupted dispatch and "
                "%d jobs whose message was lost%s",
                reaped.expired_leases,
                interrupted,
                reaped.lost_messages,
                " (the broker came back empty)" if broker_reset else "",
            )
        runtime.ctx.enqueue(messages)
    enqueue_image_jobs(current_app, image_jobs)
    return len(messages)
