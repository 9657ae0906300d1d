"""Image jobs, on their own queue (consumed last): a slow image never delays metadata."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from celery import Celery, current_app, shared_task
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.images.jobs import queue_due_image_jobs
from shared.images.processing import ImageCacher
from shared.queues import CACHE_IMAGES_TASK, IMAGES_QUEUE
from shared.wiring import build_image_cacher
from workers.runtime import Runtime, get_runtime
from workers.tasks.jobs import JOB_TASK_OPTIONS

log = logging.getLogger(__name__)

# Image jobs waiting on the broker at most: a backlog waits in Postgres, not in Redis.
IMAGE_QUEUE_DEPTH = 1000

_lock = threading.Lock()
_cacher: tuple[Runtime, ImageCacher] | None = None


def get_image_cacher(app: Celery) -> ImageCacher:
    """This process's image cacher, on the runtime's sessions and host slots (so it is
    rebuilt with the runtime, after a fork)."""
    global _cacher
    runtime = get_runtime(app)
    with _lock:
        if _cacher is None or _cacher[0] is not runtime:
            ctx, metadata = runtime.ctx, runtime.processor.metadata
            cacher = build_image_cacher(
                ctx.settings, ctx.sessions, metadata.host_slots, metadata.rate_limits
            )
            _cacher = (runtime, cacher)
        return _cacher[1]


@shared_task(name=CACHE_IMAGES_TASK, **JOB_TASK_OPTIONS)
def cache_images(self: Any, job_id: int) -> str | None:
    """Cache one metadata row's image and thumbnail; returns how the image job ended."""
    outcome = get_image_cacher(current_app).run(int(job_id))
    return None if outcome is None else outcome.status.value


def queue_due_images(session: Session, settings: Settings, broker_reset: bool) -> list[int]:
    """dispatch_jobs' part for images: due image jobs marked queued (none when disabled)."""
    if not settings.image_cache_processor_enabled:
        return []
    return queue_due_image_jobs(
        session, IMAGE_QUEUE_DEPTH, broker_reset=broker_reset, max_waiting=IMAGE_QUEUE_DEPTH
    )


def enqueue_image_jobs(app: Celery, job_ids: Sequence[int]) -> None:
    """One message per image job on the images queue, sent after the commit that queued them."""
    if not job_ids:
        return
    with app.producer_or_acquire() as producer:
        for job_id in job_ids:
            app.send_task(CACHE_IMAGES_TASK, args=[job_id], queue=IMAGES_QUEUE, producer=producer)
    log.debug("enqueued %d image jobs", len(job_ids))
