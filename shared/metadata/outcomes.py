"""How one fetch of a metadata document or an image ended, and which class of host served it,
as the few bounded names metrics and fetch history use (docs/freshness.md#fetch-outcomes).

`classify_fetch(error)` takes the exception a fetch raised (None: it succeeded) and needs
nothing else, so anything that tries a fetch can record its outcome the same way.
"""

from __future__ import annotations

from enum import StrEnum

from shared.errors import (
    HostBusyError,
    HostRateLimitedError,
    JobTimeoutError,
    MetadataHttpError,
    MetadataParseError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    TooManyRequestsError,
)
from shared.images.errors import (
    ImageError,
    ImageHttpError,
    ImageParseError,
    ImageTimeoutError,
    ImageTooLargeError,
    ImageUnsupportedError,
)
from shared.metadata.netguard import BlockedAddressError
from shared.metadata.uris import FetchableUrl
from shared.models import FetchOutcome

__all__ = ["FetchOutcome", "HostClass", "classify_fetch", "host_class"]


class HostClass(StrEnum):
    IPFS_GATEWAY = "ipfs_gateway"
    ARWEAVE_GATEWAY = "arweave_gateway"
    HTTP = "http"  # any other http(s) host; never its name, so the label stays bounded
    DATA_URI = "data_uri"  # the payload is inline: nothing is fetched from a host


# First match wins: subclasses before their bases (BlockedAddressError is a
# MetadataHttpError, TooManyRequestsError a RetryableJobError).
_OUTCOMES: tuple[tuple[type[BaseException], FetchOutcome], ...] = (
    (MetadataTimeoutError, FetchOutcome.TIMEOUT),
    (ImageTimeoutError, FetchOutcome.TIMEOUT),
    (JobTimeoutError, FetchOutcome.TIMEOUT),
    (MetadataSizeExceededError, FetchOutcome.TOO_LARGE),
    (ImageTooLargeError, FetchOutcome.TOO_LARGE),
    (MetadataParseError, FetchOutcome.PARSE_ERROR),
    (ImageParseError, FetchOutcome.PARSE_ERROR),
    (ImageUnsupportedError, FetchOutcome.PARSE_ERROR),
    (BlockedAddressError, FetchOutcome.BLOCKED),
    (MetadataHttpError, FetchOutcome.HTTP_ERROR),
    (ImageHttpError, FetchOutcome.HTTP_ERROR),
    (TooManyRequestsError, FetchOutcome.RATE_LIMITED),
    (HostRateLimitedError, FetchOutcome.RATE_LIMITED),  # skipped: the host said 429 just now
    (HostBusyError, FetchOutcome.DEFERRED),  # no request: the host's slots stayed taken
    (ImageError, FetchOutcome.PARSE_ERROR),  # any other refusal of the image's bytes
)


def classify_fetch(error: BaseException | None = None, *, unchanged: bool = False) -> FetchOutcome:
    """The outcome of one fetch: what it raised, or None when it succeeded."""
    if error is None:
        return FetchOutcome.UNCHANGED if unchanged else FetchOutcome.OK
    if isinstance(error.__cause__, TooManyRequestsError):  # a 429 the service defers
        return FetchOutcome.RATE_LIMITED
    return next(
        (outcome for kind, outcome in _OUTCOMES if isinstance(error, kind)), FetchOutcome.ERROR
    )


def host_class(target: FetchableUrl | None) -> HostClass:
    """The class of host a fetch goes to; None for a `data:` URI (nothing to fetch)."""
    if target is None:
        return HostClass.DATA_URI
    if target.gateway == "ipfs":
        return HostClass.IPFS_GATEWAY
    if target.gateway == "arweave":
        return HostClass.ARWEAVE_GATEWAY
    return HostClass.HTTP
