"""Image jobs, on their own queue (consumed last): a slow image never delays metadata."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, current_app, shared_task

from shared.images.processing import ImageCacher
from shared.queues import CACHE_IMAGES_TASK
from shared.wiring import build_image_cacher
from workers.runtime import Runtime, get_runtime
from workers.tasks.jobs import JOB_TASK_OPTIONS

log = logging.getLogger(__name__)

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
