"""Per-process clients for tasks, built on first use (after the prefork, never shared)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from celery import Celery
from sqlalchemy import Engine

from shared.config import Settings
from shared.db import make_engine, make_session_factory
from shared.indexing.processing import Processor
from shared.jobs.dispatch import Dispatcher
from shared.jobs.runner import JobContext
from shared.metadata.fetch import MetadataFetcher
from shared.queues import CACHE_IMAGES_TASK, IMAGES_QUEUE, JobMessage, TaskCall, task_calls
from shared.stacks.api_db import StacksApiDatabase
from shared.webhooks.delivery import webhook_fetcher
from shared.wiring import build_processor

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    processor: Processor
    chain: StacksApiDatabase | None
    engines: tuple[Engine, ...]
    redis: redis.Redis

    dispatcher: Dispatcher
    # POSTs webhook deliveries through the SSRF guard (docs/webhooks.md).
    webhooks: MetadataFetcher

    @property
    def ctx(self) -> JobContext:
        return self.processor.ctx


_lock = threading.Lock()
_runtime: tuple[int, Runtime] | None = None


def get_runtime(app: Celery) -> Runtime:
    """The runtime of this process; a forked child builds its own."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime[0] != os.getpid():
            _runtime = (os.getpid(), build_runtime(app.conf.token_metadata_settings, app))
        return _runtime[1]


def build_runtime(settings: Settings, app: Celery) -> Runtime:
    pooled = settings.transaction_pooled
    engine = make_engine(
        settings.database_url, pool_size=10, application_name="tm-worker", transaction_pooled=pooled
    )
    chain = None
    engines: tuple[Engine, ...] = (engine,)
    if settings.stacks_api_database_url:
        chain_engine = make_engine(
            settings.stacks_api_database_url,
            pool_size=2,
            application_name="tm-chain-reader",
            transaction_pooled=pooled,
        )
        chain = StacksApiDatabase(chain_engine)
        engines = (engine, chain_engine)
    sessions = make_session_factory(engine)
    enqueuer = JobEnqueuer(app)
    processor = build_processor(settings, sessions, enqueuer, chain)
    client = redis.Redis.from_url(settings.redis_url)
    dispatcher = Dispatcher(
        sessions=sessions,
        redis=client,
        enqueue=processor.ctx.enqueue,
        enqueue_images=enqueuer.images,
        images_enabled=settings.image_cache_processor_enabled,
    )
    return Runtime(processor, chain, engines, client, dispatcher, webhook_fetcher(settings))


class JobEnqueuer:
    """Sends job messages by task name over one pooled producer connection: token jobs in
    batches (`task_calls`), image jobs one per message on the images queue."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.send(task_calls(messages))

    def images(self, job_ids: Sequence[int]) -> None:
        self.send([TaskCall(CACHE_IMAGES_TASK, IMAGES_QUEUE, [job_id]) for job_id in job_ids])

    def send(self, calls: Sequence[TaskCall]) -> None:
        if not calls:
            return
        with self.app.producer_or_acquire() as producer:
            for call in calls:
                self.app.send_task(
                    call.task_name, args=call.args, queue=call.queue, producer=producer
                )
        log.debug("sent %d messages", len(calls))
