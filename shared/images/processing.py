"""One image job: download through the guarded fetcher, render, store, record the outcome.

Whatever happens, the token's metadata stays as stored
(docs/reference-differences.md#image-failures): a failure only leaves its cached image
fields as they were, and is retried with back-off up to JOB_QUEUE_MAX_RETRIES.
Refusals that the same bytes would earn again (SVG and other formats, too many bytes or
pixels) fail at once; a metadata refresh or the admin route schedules the image again.
"""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import session_scope
from shared.errors import (
    MetadataHttpError,
    MetadataParseError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    RetryableJobError,
    TooManyRequestsError,
)
from shared.images.errors import (
    ImageError,
    ImageHttpError,
    ImageTimeoutError,
    ImageTooLargeError,
    ImageUnsupportedError,
)
from shared.images.jobs import (
    ClaimedImageJob,
    ImageOutcome,
    claim_image_job,
    finish_image_job,
)
from shared.images.render import RenderedImage, render_image
from shared.images.storage import ImageStorage, public_url
from shared.indexing.fetch_counts import counted_fetch
from shared.indexing.fetch_history import IMAGE, Answer, FetchRecorder, attempt_rows, write_attempts
from shared.indexing.gateway_fetch import GatewayFetcher
from shared.indexing.host_slots import HostSlots
from shared.indexing.polite_fetch import polite_fetch
from shared.indexing.rate_limits import RateLimitedHosts, remember_rate_limited_host
from shared.jobs.outcomes import outcome_for_error, retry_or_give_up
from shared.jobs.table import JobOutcome
from shared.metadata.fetch import MetadataFetcher
from shared.metadata.outcomes import host_class
from shared.metadata.uris import (
    FetchableUrl,
    GatewaySettings,
    fetchable_url,
    is_data_uri,
    parse_data_uri,
)
from shared.models import JobStatus, JobTrigger

log = logging.getLogger(__name__)

# IMAGE_CACHE_MAX_BYTE_SIZE unset: Hiro's API downloads anything; we stop at 10 MiB
# (docs/reference-differences.md#image-limits).
DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024
CONCURRENT_DECODES = 2


@dataclass
class ImageCacher:
    """A worker process's image clients; `run(job_id)` is what the image task calls."""

    settings: Settings
    sessions: sessionmaker[Session]
    fetcher: MetadataFetcher
    gateways: GatewaySettings
    storage: ImageStorage
    rate_limits: RateLimitedHosts | None = None
    host_slots: HostSlots | None = None
    # Several gateways configured: fail over and hedge between them (docs/gateways.md).
    gateway_fetcher: GatewayFetcher | None = None
    # A decoded frame may take IMAGE_CACHE_MAX_PIXELS x 4 bytes: few at once per process.
    decoding: threading.Semaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(CONCURRENT_DECODES)
    )

    @property
    def max_bytes(self) -> int:
        return self.settings.image_cache_max_byte_size or DEFAULT_MAX_IMAGE_BYTES

    def run(self, job_id: int) -> JobOutcome | None:
        """Claim the job, cache its image, record the outcome; None if not claimable."""
        lease = timedelta(milliseconds=self.settings.job_queue_timeout_ms * 2)
        with session_scope(self.sessions) as session:
            job = claim_image_job(session, job_id, lease)
        if job is None:
            log.info("image job %s is not claimable (done, pending again or held)", job_id)
            return None
        error: Exception | None = None
        fetches = FetchRecorder()
        try:
            outcome: JobOutcome = self._cache(job, fetches)
        except Exception as exc:
            error = exc
            outcome = image_outcome(exc, job.retry_count, self.settings)
        log.info("image job %s ended %s %s", job_id, outcome.status.value, outcome.error or "")
        with session_scope(self.sessions) as session:
            if isinstance(error, TooManyRequestsError):
                default_s = self.settings.metadata_rate_limited_host_retry_after
                remember_rate_limited_host(session, error, default_s)
            # A retry's own trigger; else the token job's (docs/fetch-history.md#triggers).
            trigger = JobTrigger.RETRY.value if job.retry_count else None
            write_attempts(session, list(attempt_rows(job.token_id, trigger, fetches.attempts)))
            finish_image_job(session, job, outcome)
        return outcome

    def _cache(self, job: ClaimedImageJob, fetches: FetchRecorder) -> ImageOutcome:
        rendered = self.fetch_and_render(job.image, fetches)
        original_key = f"{job.key_stem}.png"
        thumbnail_key = f"{job.key_stem}-thumb.png"
        self.storage.put(original_key, rendered.original)
        self.storage.put(thumbnail_key, rendered.thumbnail)
        base = self.settings.image_cache_cdn_base_path
        return ImageOutcome(
            JobStatus.DONE,
            cached_image=public_url(self.storage, original_key, base),
            cached_thumbnail_image=public_url(self.storage, thumbnail_key, base),
        )

    def fetch_and_render(self, image: str, fetches: FetchRecorder | None = None) -> RenderedImage:
        """Download and decode the image: one fetch (docs/freshness.md#fetch-outcomes) and one
        attempt in `fetches` (a corrupt image is its parse error, docs/fetch-history.md)."""
        inline = is_data_uri(image)
        recording = (
            fetches.attempt(IMAGE, self._url(image))
            if fetches is not None and not inline
            else nullcontext(Answer())
        )
        with recording as answer:
            target = None if inline else self._target(image)
            with counted_fetch("image", host_class(target)):
                data = self._inline(image) if target is None else self.download(target, answer)
                with self.decoding:
                    return render_image(
                        data,
                        max_pixels=self.settings.image_cache_max_pixels,
                        thumbnail_width=self.settings.image_cache_resize_width,
                    )

    def _url(self, image: str) -> str:
        """The URL an image is fetched from, for its attempt (the image itself if none)."""
        try:
            return fetchable_url(image, self.gateways).url
        except Exception:  # the download reports it; the attempt shows what was asked for
            return image

    def _target(self, image: str) -> FetchableUrl:
        try:
            return fetchable_url(image, self.gateways)
        except MetadataParseError as exc:  # an unsupported scheme
            raise ImageUnsupportedError(str(exc)) from exc

    def download(self, target: FetchableUrl, answer: Answer | None = None) -> bytes:
        """The image's bytes, fetched like metadata is (status and size noted in `answer`)."""
        try:
            if self.gateway_fetcher is not None:
                fetched = self.gateway_fetcher.fetch(target, self.max_bytes)
            else:
                fetched = polite_fetch(
                    self.fetcher, target, self.rate_limits, self.host_slots, self.max_bytes
                )
        except MetadataSizeExceededError as exc:
            raise ImageTooLargeError(str(exc)) from exc
        except MetadataTimeoutError as exc:
            raise ImageTimeoutError(str(exc)) from exc
        except MetadataHttpError as exc:
            raise ImageHttpError(str(exc)) from exc
        if answer is not None:
            answer.http_status, answer.bytes = fetched.status, len(fetched.body)
        return fetched.body

    def _inline(self, image: str) -> bytes:
        try:
            inline = parse_data_uri(image)
        except MetadataParseError as exc:  # a malformed data: URI
            raise ImageUnsupportedError(str(exc)) from exc
        if not (inline.media_type or "").startswith("image/"):
            raise ImageUnsupportedError(f"data: URI of type {inline.media_type}, not image/*")
        if len(inline.data) > self.max_bytes:
            raise ImageTooLargeError(f"data: URI of {len(inline.data)} bytes")
        return inline.data


def image_outcome(exc: Exception, retry_count: int, settings: Settings) -> JobOutcome:
    """How an error ends an image job: a refusal the same bytes would earn again fails at
    once; a busy host waits without spending a retry; anything else (a host's error, storage
    down, a bug) is retried with back-off, the token keeping its metadata meanwhile."""
    if isinstance(exc, ImageError):
        if exc.permanent:
            return JobOutcome(JobStatus.FAILED, int(exc.reason), error=str(exc))
        return retry_or_give_up(retry_count, str(exc), settings, reason=int(exc.reason))
    if isinstance(exc, RetryableJobError):  # rate limited or busy: no request was sent
        return outcome_for_error(exc, retry_count, settings)
    log.error("image job failed unexpectedly", exc_info=exc)
    return retry_or_give_up(retry_count, f"{type(exc).__name__}: {exc}", settings)
