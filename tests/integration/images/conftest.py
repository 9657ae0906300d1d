"""The image cache against the real Postgres and images served by a loopback HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from support.http_server import ScriptedServer

from shared.config import Settings
from shared.images.processing import ImageCacher
from shared.wiring import build_image_cacher


@pytest.fixture
def image_settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(
        settings,
        image_cache_processor_enabled=True,
        image_cache_local_dir=str(tmp_path / "images"),
        job_queue_max_retries=2,
        job_queue_retry_after_ms=1000,
    )


@pytest.fixture
def cacher(image_settings: Settings, sessions: sessionmaker[Session]) -> Iterator[ImageCacher]:
    cacher = build_image_cacher(image_settings, sessions)
    yield cacher
    cacher.fetcher.close()


@pytest.fixture
def host() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server
