"""The worker side for real: dispatch_jobs sends image jobs to the images queue of the real
Redis broker, and the Celery task function caches the image a message names."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery._state import get_current_app
from integration.images.images_support import add_image_token, image_job, metadata_row, png
from support.broker import emptied
from support.http_server import Reply, ScriptedServer

import workers.runtime
import workers.tasks.images
from shared.config import Settings
from shared.models import JobStatus
from shared.queues import CACHE_IMAGES_TASK, IMAGES_QUEUE
from workers.celery_app import create_celery_app
from workers.tasks.chain import dispatch_jobs
from workers.tasks.images import cache_images


@contextmanager
def running_as_worker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    """The current Celery app as a worker process has it, its runtime built from `settings`."""
    settings = replace(settings, stacks_node_rpc_url="http://127.0.0.1:9")  # never called
    monkeypatch.setattr(workers.runtime, "_runtime", None)
    monkeypatch.setattr(workers.tasks.images, "_cacher", None)
    previous = get_current_app()
    app = create_celery_app(settings)
    app.set_current()
    try:
        yield app
    finally:
        if workers.tasks.images._cacher is not None:
            workers.tasks.images._cacher[1].fetcher.close()
        if workers.runtime._runtime is not None:
            runtime = workers.runtime._runtime[1]
            for engine in runtime.engines:
                engine.dispose()
            runtime.processor.metadata.fetcher.close()
        previous.set_current()
        app.close()


@pytest.fixture
def worker_app(image_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    with running_as_worker(image_settings, monkeypatch) as app:
        yield app


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    with emptied(redis_url, IMAGES_QUEUE) as client:
        yield client


def test_dispatched_image_job_is_cached_by_the_celery_task(
    worker_app: Celery, broker: redis.Redis, sessions, host: ScriptedServer
) -> None:
    token = add_image_token(sessions, {None: host.route("/1.png", Reply(200, png(640, 480)))})
    dispatch_jobs()
    assert broker.llen(IMAGES_QUEUE) == 1
    message = json.loads(broker.lpop(IMAGES_QUEUE))
    assert message["headers"]["task"] == CACHE_IMAGES_TASK
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([image_job(sessions, token.metadata_id).id], {})
    assert image_job(sessions, token.metadata_id).status == JobStatus.QUEUED
    assert cache_images(*args) == "done"
    assert cache_images(*args) is None  # a second delivery finds nothing to do
    assert host.hits["/1.png"] == 1
    row = metadata_row(sessions, token.metadata_id)
    assert row.cached_thumbnail_image == f"/metadata/v1/images/{token.principal}/1-thumb.png"
    stored = Path(worker_app.conf.token_metadata_settings.image_cache_local_dir)
    assert (stored / token.principal / "1-thumb.png").is_file()


def test_no_image_job_is_dispatched_while_the_cache_is_disabled(
    image_settings: Settings, monkeypatch: pytest.MonkeyPatch, broker: redis.Redis, sessions
) -> None:
    token = add_image_token(sessions, {None: "https://img.example/1.png"})
    disabled = replace(image_settings, image_cache_processor_enabled=False)
    with running_as_worker(disabled, monkeypatch):
        dispatch_jobs()
    assert broker.llen(IMAGES_QUEUE) == 0
    assert image_job(sessions, token.metadata_id).status == JobStatus.PENDING
