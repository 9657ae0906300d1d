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
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import session_scope
from shared.errors import (
    HostBusyError,
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
from shared.images.render import render_image
from shared.images.storage import ImageStorage, public_url
from shared.indexing.host_slots import HostSlots
from shared.indexing.polite_fetch import counted_fetch, host_class, polite_fetch
from shared.indexing.rate_limits import RateLimitedHosts, remember_rate_limited_host
from shared.jobs.runner import backoff_s
from shared.metadata.fetch import MetadataFetcher
from shared.metadata.uris import GatewaySettings, fetchable_url, is_data_uri, parse_data_uri
from shared.models import JobStatus

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
    # A decoded frame may take IMAGE_CACHE_MAX_PIXELS x 4 bytes: few at once per process.
    decoding: threading.Semaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(CONCURRENT_DECODES)
    )

    @property
    def max_bytes(self) -> int:
        return self.settings.image_cache_max_byte_size or DEFAULT_MAX_IMAGE_BYTES

    def run(self, job_id: int) -> ImageOutcome | None:
        """Claim the job, cache its image, record the outcome; None if not claimable."""
        lease = timedelta(milliseconds=self.settings.job_queue_timeout_ms * 2)
        with session_scope(self.sessions) as session:
            job = claim_image_job(session, job_id, lease)
        if job is None:
            log.info("image job %s is not claimable (done, pending again or held)", job_id)
            return None
        rate_limited: TooManyRequestsError | None = None
        try:
            outcome = self._cache(job)
        except TooManyRequestsError as exc:
            rate_limited = exc
            outcome = self._retry(job, str(exc), None, exc.retry_after_s)
        except HostBusyError as exc:
            outcome = ImageOutcome(
                JobStatus.PENDING, retry_after_s=exc.retry_after_s, uses_retry=False
            )
        except RetryableJobError as exc:  # the host is rate limited: no request sent
            outcome = self._retry(job, str(exc), None, exc.retry_after_s)
        except ImageError as exc:
            outcome = self._failure(job, exc)
        except Exception as exc:  # storage down, a bug: keep the token, try again later
            log.exception("image job %s failed unexpectedly", job_id)
            outcome = self._retry(job, f"{type(exc).__name__}: {exc}", None, None)
        log.info("image job %s ended %s %s", job_id, outcome.status.value, outcome.error or "")
        with session_scope(self.sessions) as session:
            if rate_limited is not None:
                default_s = self.settings.metadata_rate_limited_host_retry_after
                remember_rate_limited_host(session, rate_limited, default_s)
            finish_image_job(session, job, outcome)
        return outcome

    def _cache(self, job: ClaimedImageJob) -> ImageOutcome:
        data = self.download(job.image)
        with self.decoding:
            rendered = render_image(
                data,
                max_pixels=self.settings.image_cache_max_pixels,
                thumbnail_width=self.settings.image_cache_resize_width,
            )
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

    def download(self, image: str) -> bytes:
        """The image's bytes: inline `data:image/...`, or fetched like metadata is."""
        try:
            if is_data_uri(image):
                return self._inline(image)
            target = fetchable_url(image, self.gateways)
            with counted_fetch(host_class(target), kind="image"):
                return polite_fetch(
                    self.fetcher, target, self.rate_limits, self.host_slots, self.max_bytes
                )
        except MetadataSizeExceededError as exc:
            raise ImageTooLargeError(str(exc)) from exc
        except MetadataTimeoutError as exc:
            raise ImageTimeoutError(str(exc)) from exc
        except MetadataHttpError as exc:
            raise ImageHttpError(str(exc)) from exc
        except MetadataParseError as exc:  # an unsupported scheme or a malformed data: URI
            raise ImageUnsupportedError(str(exc)) from exc

    def _inline(self, image: str) -> bytes:
        inline = parse_data_uri(image)
        if not (inline.media_type or "").startswith("image/"):
            raise ImageUnsupportedError(f"data: URI of type {inline.media_type}, not image/*")
        if len(inline.data) > self.max_bytes:
            raise ImageTooLargeError(f"data: URI of {len(inline.data)} bytes")
        return inline.data

    def _failure(self, job: ClaimedImageJob, exc: ImageError) -> ImageOutcome:
        if exc.permanent:
            return ImageOutcome(JobStatus.FAILED, int(exc.reason), error=str(exc))
        return self._retry(job, str(exc), int(exc.reason), None)

    def _retry(
        self, job: ClaimedImageJob, error: str, reason: int | None, delay_s: float | None
    ) -> ImageOutcome:
        """Pending again after a back-off, until JOB_QUEUE_MAX_RETRIES; then failed."""
        settings = self.settings
        if not settings.job_queue_strict_mode and job.retry_count >= settings.job_queue_max_retries:
            error = f"gave up after {job.retry_count} retries: {error}"
            return ImageOutcome(JobStatus.FAILED, reason, error=error)
        if delay_s is None:
            delay_s = backoff_s(settings.job_queue_retry_after_ms / 1000, job.retry_count)
        return ImageOutcome(JobStatus.PENDING, reason, retry_after_s=delay_s, error=error)
