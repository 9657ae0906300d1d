"""How an error ends a job run, for every job kind (docs/job-engine.md#outcomes).

Retries are counted across pick-ups (docs/reference-differences.md#retry-count): a retryable
error sends the job back to pending after an exponential back-off until
JOB_QUEUE_MAX_RETRIES are used (never, in strict mode), then it fails.
"""

from __future__ import annotations

from shared.config import Settings
from shared.errors import (
    HostBusyError,
    JobError,
    MetadataServerError,
    RetryableJobError,
    UserError,
)
from shared.jobs.table import JobOutcome, deferral
from shared.models import JobStatus

MAX_BACKOFF_S = 3600.0


def outcome_for_error(exc: JobError, retry_count: int, settings: Settings) -> JobOutcome:
    """A busy host -> pending again soon, no retry spent; retryable, or a host's 5xx ->
    pending until the retries are used up; user error -> invalid; else failed."""
    if isinstance(exc, HostBusyError):
        return deferral(exc.retry_after_s or 1.0)
    if isinstance(exc, MetadataServerError) and retries_left(retry_count, settings):
        return retry_or_give_up(retry_count, str(exc), settings, reason=exc.reason)
    if isinstance(exc, RetryableJobError):
        return retry_or_give_up(retry_count, str(exc), settings, delay_s=exc.retry_after_s)
    if isinstance(exc, UserError):
        return JobOutcome(JobStatus.INVALID, invalid_reason=exc.reason, error=str(exc))
    return JobOutcome(JobStatus.FAILED, error=str(exc))


def retries_left(retry_count: int, settings: Settings) -> bool:
    return settings.job_queue_strict_mode or retry_count < settings.job_queue_max_retries


def retry_or_give_up(
    retry_count: int,
    error: str,
    settings: Settings,
    *,
    delay_s: float | None = None,
    reason: int | None = None,
) -> JobOutcome:
    """Pending again after `delay_s` (else the back-off) while retries remain; then failed.
    `reason` is recorded either way (an image job keeps why its last attempt failed)."""
    if not retries_left(retry_count, settings):
        return JobOutcome(
            JobStatus.FAILED, reason, error=f"gave up after {retry_count} retries: {error}"
        )
    if delay_s is None:
        delay_s = backoff_s(settings.job_queue_retry_after_ms / 1000, retry_count)
    return JobOutcome(JobStatus.PENDING, reason, retry_after_s=delay_s, error=error)


def backoff_s(base_s: float, retries_so_far: int) -> float:
    """Exponential back-off: base, 2x base, 4x base ... capped at an hour."""
    return float(min(base_s * 2 ** min(retries_so_far, 20), MAX_BACKOFF_S))
