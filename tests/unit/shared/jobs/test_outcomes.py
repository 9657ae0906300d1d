"""How each error class ends a job (docs/job-engine.md#outcomes); retries are counted
(docs/reference-differences.md#retry-count)."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import (
    HostBusyError,
    InvalidReason,
    MetadataHttpError,
    MetadataParseError,
    MetadataServerError,
    RetryableJobError,
    SmartContractClarityError,
    StacksNodeHttpError,
    TooManyRequestsError,
)
from shared.images.errors import ImageHttpError, ImageTooLargeError
from shared.images.processing import image_outcome
from shared.jobs.outcomes import outcome_for_error
from shared.models import JobStatus


def job(retries: int = 0) -> int:
    """A claimed job's retry count: all an outcome depends on."""
    return retries


def test_retryable_error_goes_back_to_pending_after_the_configured_delay() -> None:
    outcome = outcome_for_error(RetryableJobError("node busy"), job(), Settings())
    assert outcome.status == JobStatus.PENDING
    assert outcome.retry_after_s == 5.0


def test_rate_limit_delay_comes_from_retry_after() -> None:
    error = TooManyRequestsError("http://m.example/1.json", "m.example", 120)
    assert outcome_for_error(error, job(), Settings()).retry_after_s == 120


def test_job_fails_once_max_retries_is_used_up() -> None:
    settings = Settings(job_queue_max_retries=3)
    assert outcome_for_error(RetryableJobError("x"), job(2), settings).status == JobStatus.PENDING
    assert outcome_for_error(RetryableJobError("x"), job(3), settings).status == JobStatus.FAILED


def test_zero_max_retries_fails_the_first_retryable_error() -> None:
    settings = Settings(job_queue_max_retries=0)
    assert outcome_for_error(RetryableJobError("x"), job(), settings).status == JobStatus.FAILED


def test_strict_mode_retries_forever() -> None:
    settings = Settings(job_queue_max_retries=0, job_queue_strict_mode=True)
    assert outcome_for_error(RetryableJobError("x"), job(99), settings).status == JobStatus.PENDING


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (SmartContractClarityError("err u1"), InvalidReason.TOKEN_CONTRACT_CLARITY_ERROR),
        (MetadataParseError("no name"), InvalidReason.METADATA_PARSE_FAILED),
        (MetadataHttpError("404"), InvalidReason.METADATA_HTTP_ERROR),
    ],
)
def test_user_errors_end_invalid_with_their_reason(error: Exception, reason: InvalidReason) -> None:
    outcome = outcome_for_error(error, job(), Settings())  # type: ignore[arg-type]
    assert outcome.status == JobStatus.INVALID
    assert outcome.invalid_reason == reason


def test_node_failure_ends_failed() -> None:
    outcome = outcome_for_error(StacksNodeHttpError("HTTP 500"), job(), Settings())
    assert outcome.status == JobStatus.FAILED
    assert outcome.invalid_reason is None


def test_retry_delays_grow_exponentially_up_to_an_hour() -> None:
    settings = Settings(job_queue_retry_after_ms=5000, job_queue_strict_mode=True)
    delays = [
        outcome_for_error(RetryableJobError("x"), job(n), settings).retry_after_s for n in range(4)
    ]
    assert delays == [5.0, 10.0, 20.0, 40.0]
    assert outcome_for_error(RetryableJobError("x"), job(30), settings).retry_after_s == 3600.0


def test_a_busy_host_defers_the_job_without_spending_a_retry() -> None:
    outcome = outcome_for_error(HostBusyError("m.example", 2.5), job(3), Settings())
    assert (outcome.status, outcome.retry_after_s, outcome.uses_retry) == (
        JobStatus.PENDING,
        2.5,
        False,
    )


def test_a_server_error_is_retried_with_its_reason_then_ends_invalid_107() -> None:
    settings = Settings(job_queue_max_retries=2)
    error = MetadataServerError("HTTP 502", status=502)
    retried = outcome_for_error(error, job(1), settings)
    assert (retried.status, retried.invalid_reason, retried.retry_after_s) == (
        JobStatus.PENDING,
        InvalidReason.METADATA_HTTP_ERROR,
        10.0,
    )
    given_up = outcome_for_error(error, job(2), settings)
    assert (given_up.status, given_up.invalid_reason) == (
        JobStatus.INVALID,
        InvalidReason.METADATA_HTTP_ERROR,
    )


def test_an_image_refusal_the_same_bytes_would_earn_again_fails_at_once() -> None:
    outcome = image_outcome(ImageTooLargeError("11 MiB"), 0, Settings())
    assert (outcome.status, outcome.invalid_reason) == (
        JobStatus.FAILED,
        InvalidReason.IMAGE_SIZE_EXCEEDED,
    )


def test_an_image_hosts_error_is_retried_with_its_reason_until_the_retries_are_used() -> None:
    settings = Settings(job_queue_max_retries=2)
    retried = image_outcome(ImageHttpError("HTTP 404"), 1, settings)
    assert (retried.status, retried.invalid_reason) == (
        JobStatus.PENDING,
        InvalidReason.IMAGE_HTTP_ERROR,
    )
    given_up = image_outcome(ImageHttpError("HTTP 404"), 2, settings)
    assert given_up.status == JobStatus.FAILED
    assert given_up.error == "gave up after 2 retries: HTTP 404"


def test_an_unexpected_image_error_is_retried_not_failed() -> None:
    outcome = image_outcome(OSError("storage is full"), 0, Settings())
    assert (outcome.status, outcome.error) == (JobStatus.PENDING, "OSError: storage is full")
