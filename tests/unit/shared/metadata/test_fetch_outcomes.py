"""classify_fetch: every way a fetch ends maps to one bounded outcome; host classes never
carry a host's name."""

from __future__ import annotations

import pytest

from shared.errors import (
    HostBusyError,
    HostRateLimitedError,
    MetadataHttpError,
    MetadataParseError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    RetryableJobError,
    StacksNodeError,
    TooManyRequestsError,
)
from shared.images.errors import (
    ImageHttpError,
    ImageParseError,
    ImageTimeoutError,
    ImageTooLargeError,
    ImageUnsupportedError,
)
from shared.metadata.netguard import BlockedAddressError
from shared.metadata.outcomes import FetchOutcome, HostClass, classify_fetch, host_class
from shared.metadata.uris import GatewaySettings, fetchable_url


def test_a_fetch_without_an_error_is_ok_or_unchanged() -> None:
    assert classify_fetch() == FetchOutcome.OK
    assert classify_fetch(None) == "ok"
    assert classify_fetch(None, unchanged=True) == FetchOutcome.UNCHANGED


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (MetadataTimeoutError("Timed out fetching http://a/1.json"), FetchOutcome.TIMEOUT),
        (ImageTimeoutError("Timed out fetching http://a/1.png"), FetchOutcome.TIMEOUT),
        (MetadataHttpError("HTTP 500 from http://a/1.json"), FetchOutcome.HTTP_ERROR),
        (ImageHttpError("HTTP 404 from http://a/1.png"), FetchOutcome.HTTP_ERROR),
        (MetadataParseError("not JSON"), FetchOutcome.PARSE_ERROR),
        (ImageParseError("truncated PNG"), FetchOutcome.PARSE_ERROR),
        (ImageUnsupportedError("SVG"), FetchOutcome.PARSE_ERROR),
        (MetadataSizeExceededError("over 1000000 bytes"), FetchOutcome.TOO_LARGE),
        (ImageTooLargeError("too many pixels"), FetchOutcome.TOO_LARGE),
        # A MetadataHttpError itself, yet the guard's refusal, not the host's answer.
        (BlockedAddressError("a.test", "127.0.0.1", "loopback"), FetchOutcome.BLOCKED),
        # A RetryableJobError itself, yet an answer of the host.
        (TooManyRequestsError("http://a/1.json", "a", 30.0), FetchOutcome.RATE_LIMITED),
        (HostBusyError("a"), FetchOutcome.DEFERRED),
        (HostRateLimitedError("a", 60.0), FetchOutcome.RATE_LIMITED),
        (RetryableJobError("node runtime error"), FetchOutcome.ERROR),  # not a fetch's
        (StacksNodeError("not a fetch error"), FetchOutcome.ERROR),
        (ValueError("a bug"), FetchOutcome.ERROR),
    ],
)
def test_each_error_has_its_outcome(error: BaseException, outcome: FetchOutcome) -> None:
    assert classify_fetch(error) == outcome


def test_every_outcome_is_reachable() -> None:
    errors = [
        MetadataTimeoutError("t"),
        MetadataHttpError("h"),
        MetadataParseError("p"),
        MetadataSizeExceededError("s"),
        BlockedAddressError("a.test", "10.0.0.1", "private"),
        TooManyRequestsError("u", "a", None),
        HostBusyError("a"),
        ValueError("v"),
    ]
    reached = {classify_fetch(), classify_fetch(unchanged=True)}
    reached |= {classify_fetch(error) for error in errors}
    assert reached == set(FetchOutcome)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("ipfs://QmHash/1.json", HostClass.IPFS_GATEWAY),
        ("https://ipfs.io/ipfs/QmHash/1.json", HostClass.IPFS_GATEWAY),  # rewritten
        ("ar://TxId", HostClass.ARWEAVE_GATEWAY),
        ("https://collection.example/1.json", HostClass.HTTP),
        ("http://203.0.113.7:8080/1.json", HostClass.HTTP),
    ],
)
def test_host_classes_follow_gateway_rewriting(uri: str, expected: HostClass) -> None:
    assert host_class(fetchable_url(uri, GatewaySettings())) == expected


def test_a_data_uri_has_no_host() -> None:
    assert host_class(None) == HostClass.DATA_URI
