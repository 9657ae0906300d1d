"""Domain errors of token processing and how each one ends a job.

Which error means what: docs/token-processing.md#errors.
"""

from __future__ import annotations

from enum import IntEnum


class InvalidReason(IntEnum):
    """Why a job ended `invalid`; the numbers are Hiro's API's `jobs.invalid_reason` codes."""

    UNKNOWN = 100
    METADATA_SIZE_EXCEEDED = 101
    IMAGE_SIZE_EXCEEDED = 102
    METADATA_TIMEOUT = 103
    IMAGE_TIMEOUT = 104
    METADATA_PARSE_FAILED = 105
    IMAGE_PARSE_FAILED = 106
    METADATA_HTTP_ERROR = 107
    IMAGE_HTTP_ERROR = 108
    TOKEN_CONTRACT_CLARITY_ERROR = 109


INVALID_REASON_MESSAGES: dict[InvalidReason, str] = {
    InvalidReason.UNKNOWN: "Unknown error",
    InvalidReason.METADATA_SIZE_EXCEEDED: "Metadata size is too large to process",
    InvalidReason.IMAGE_SIZE_EXCEEDED: "Image size is too large to process",
    InvalidReason.METADATA_TIMEOUT: (
        "Metadata could not be processed because it took too long to respond"
    ),
    InvalidReason.IMAGE_TIMEOUT: "Image could not be processed because it took too long to respond",
    InvalidReason.METADATA_PARSE_FAILED: (
        "Metadata could not be parsed or it does not conform to SIP-016"
    ),
    InvalidReason.IMAGE_PARSE_FAILED: "Image processing failed because it could not be parsed",
    InvalidReason.METADATA_HTTP_ERROR: (
        "Metadata could not be processed because the server responded with an error"
    ),
    InvalidReason.IMAGE_HTTP_ERROR: (
        "Image could not be processed because the server responded with an error"
    ),
    InvalidReason.TOKEN_CONTRACT_CLARITY_ERROR: (
        "The token contract produced a Clarity error when trying to fetch metadata"
    ),
}


def invalid_reason_message(code: int | None) -> str:
    """Message for a stored reason code; NULL or unknown codes read as `Unknown error`."""
    try:
        reason = InvalidReason(code) if code is not None else InvalidReason.UNKNOWN
    except ValueError:
        reason = InvalidReason.UNKNOWN
    return INVALID_REASON_MESSAGES[reason]


class JobError(Exception):
    """Base of every error that decides how a job ends."""


class RetryableJobError(JobError):
    """The job goes back to `pending` and is retried after a delay."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooManyRequestsError(RetryableJobError):
    """A host answered 429: remember the host and retry after its `Retry-After`."""

    def __init__(self, url: str, hostname: str, retry_after_s: float | None) -> None:
        super().__init__(f"{url} answered 429 Too Many Requests", retry_after_s=retry_after_s)
        self.url = url
        self.hostname = hostname

    def __reduce__(self) -> tuple[type[TooManyRequestsError], tuple[str, str, float | None]]:
        return (type(self), (self.url, self.hostname, self.retry_after_s))


class HostRateLimitedError(RetryableJobError):
    """The host answered 429 a moment ago: the fetch is skipped without a request."""

    def __init__(self, hostname: str, retry_after_s: float) -> None:
        super().__init__(
            f"skipping fetch to rate-limited hostname {hostname}", retry_after_s=retry_after_s
        )
        self.hostname = hostname

    def __reduce__(self) -> tuple[type[HostRateLimitedError], tuple[str, float]]:
        return (type(self), (self.hostname, self.retry_after_s or 0.0))


class HostBusyError(RetryableJobError):
    """The host has as many fetches in flight as allowed: try again shortly, no retry used."""

    def __init__(self, hostname: str, retry_after_s: float = 1.0) -> None:
        super().__init__(f"{hostname} is at its concurrency limit", retry_after_s=retry_after_s)
        self.hostname = hostname

    def __reduce__(self) -> tuple[type[HostBusyError], tuple[str, float]]:
        return (type(self), (self.hostname, self.retry_after_s or 1.0))


class UserError(JobError):
    """The token's own data is at fault: the job ends `invalid` with a reason code."""

    reason: InvalidReason = InvalidReason.UNKNOWN


class MetadataSizeExceededError(UserError):
    reason = InvalidReason.METADATA_SIZE_EXCEEDED


class MetadataTimeoutError(UserError):
    reason = InvalidReason.METADATA_TIMEOUT


class MetadataParseError(UserError):
    reason = InvalidReason.METADATA_PARSE_FAILED


class MetadataHttpError(UserError):
    reason = InvalidReason.METADATA_HTTP_ERROR

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the answer's HTTP status, when there was an answer


class MetadataServerError(MetadataHttpError):
    """The host answered 5xx: maybe a passing fault, so the job is retried with back-off before
    it ends `invalid` 107 (docs/token-processing.md#errors)."""


class MetadataConnectionError(MetadataHttpError):
    """No answer at all: the name did not resolve, or the connection failed or broke."""


class ContentMismatchError(MetadataHttpError):
    """An IPFS gateway answered with bytes that are not the block its CID names: that
    gateway's fault, so the next one is asked; `invalid` 107 when none serves the block
    (docs/gateways.md#verified-content)."""


class FetchCancelledError(Exception):
    """A fetch whose answer is no longer wanted (another gateway answered first) was stopped;
    never a job's outcome."""


class SmartContractClarityError(UserError):
    reason = InvalidReason.TOKEN_CONTRACT_CLARITY_ERROR


class JobTimeoutError(JobError):
    """The job ran past JOB_QUEUE_TIMEOUT_MS: it ends `failed`."""


class StacksNodeError(JobError):
    """The node itself failed (HTTP error, bad JSON, unreachable): the job ends `failed`."""


class StacksNodeHttpError(StacksNodeError):
    pass


class StacksNodeJsonParseError(StacksNodeError):
    pass
