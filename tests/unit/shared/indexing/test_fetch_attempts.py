"""What a fetch attempt records (docs/fetch-history.md): URLs without credentials, errors read
as outcomes with their HTTP status and reason code, and `unchanged` documents."""

from __future__ import annotations

import pytest

from shared.errors import (
    HostBusyError,
    HostRateLimitedError,
    JobTimeoutError,
    MetadataHttpError,
    MetadataParseError,
    MetadataServerError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    RetryableJobError,
    StacksNodeHttpError,
    TooManyRequestsError,
)
from shared.images.errors import (
    ImageHttpError,
    ImageParseError,
    ImageTimeoutError,
    ImageTooLargeError,
    ImageUnsupportedError,
)
from shared.indexing.fetch_history import (
    FETCH_ATTEMPTS_KEPT,
    FetchRecorder,
    attempt_rows,
    classify,
    scrub_url,
)
from shared.metadata.netguard import BlockedAddressError
from shared.models import FetchOutcome
from shared.reads.history import ATTEMPTS_SHOWN


@pytest.mark.parametrize(
    ("url", "scrubbed"),
    [
        ("https://user:secret@host.test/a.json?x=1", "https://host.test/a.json?x=1"),
        ("https://token@host.test:8443/a", "https://host.test:8443/a"),
        ("http://user:pw@[2001:db8::1]:8080/p", "http://[2001:db8::1]:8080/p"),
        ("https://host.test/a.json#frag", "https://host.test/a.json"),
        ("https://host.test/a@b.json", "https://host.test/a@b.json"),
        ("https://gw.test/ipfs/QmCID/1.json?k=v", "https://gw.test/ipfs/QmCID/1.json?k=v"),
        (None, None),
    ],
)
def test_urls_lose_their_credentials_and_fragment(url, scrubbed) -> None:
    assert scrub_url(url) == scrubbed


def test_a_url_that_does_not_parse_is_not_recorded() -> None:
    assert scrub_url("http://user:pw@[::1/x") is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MetadataTimeoutError("t"), (FetchOutcome.TIMEOUT, None, 103)),
        (JobTimeoutError("t"), (FetchOutcome.TIMEOUT, None, None)),
        (MetadataSizeExceededError("s"), (FetchOutcome.TOO_LARGE, None, 101)),
        (MetadataParseError("p"), (FetchOutcome.PARSE_ERROR, None, 105)),
        (BlockedAddressError("h", "10.0.0.1", "private"), (FetchOutcome.BLOCKED, None, 107)),
        (MetadataHttpError("404", status=404), (FetchOutcome.HTTP_ERROR, 404, 107)),
        (MetadataServerError("500", status=500), (FetchOutcome.HTTP_ERROR, 500, 107)),
        (MetadataHttpError("refused"), (FetchOutcome.HTTP_ERROR, None, 107)),
        (TooManyRequestsError("u", "h", 5.0), (FetchOutcome.RATE_LIMITED, 429, None)),
        (HostRateLimitedError("h", 5.0), (FetchOutcome.RATE_LIMITED, None, None)),
        (HostBusyError("h"), (FetchOutcome.DEFERRED, None, None)),
        (ImageTimeoutError("t"), (FetchOutcome.TIMEOUT, None, 104)),
        (ImageTooLargeError("s"), (FetchOutcome.TOO_LARGE, None, 102)),
        (ImageHttpError("h"), (FetchOutcome.HTTP_ERROR, None, 108)),
        (ImageParseError("p"), (FetchOutcome.PARSE_ERROR, None, 106)),
        (ImageUnsupportedError("svg"), (FetchOutcome.PARSE_ERROR, None, 106)),
    ],
)
def test_each_fetch_error_has_its_outcome_status_and_reason(error, expected) -> None:
    assert classify(error) == expected


def test_an_image_http_error_keeps_the_status_of_its_cause() -> None:
    error = ImageHttpError("h")
    error.__cause__ = MetadataHttpError("HTTP 403", status=403)
    assert classify(error) == (FetchOutcome.HTTP_ERROR, 403, 108)


@pytest.mark.parametrize(
    "error", [RetryableJobError("node runtime error"), StacksNodeHttpError("500"), KeyError("x")]
)
def test_errors_that_are_not_a_fetchs_have_no_outcome(error) -> None:
    assert classify(error) is None


def parse_after_answer(recorder: FetchRecorder) -> None:
    with recorder.attempt("metadata", "https://a.test/2") as answer:
        answer.http_status, answer.bytes = 200, 3
        raise MetadataParseError("not JSON")


def test_the_recorder_notes_answers_and_failures_in_order() -> None:
    recorder = FetchRecorder()
    with recorder.attempt("metadata", "https://u:p@a.test/1") as answer:
        answer.http_status, answer.bytes = 200, 12
    with pytest.raises(MetadataParseError):
        parse_after_answer(recorder)
    ok, bad = recorder.attempts
    assert (ok.url, ok.http_status, ok.bytes, ok.outcome) == ("https://a.test/1", 200, 12, "ok")
    assert (bad.http_status, bad.bytes, bad.outcome) == (200, 3, "parse_error")
    assert bad.reason_code == 105
    assert ok.duration_ms is not None
    assert recorder.last_error is not None


def test_a_bug_inside_an_attempt_is_not_recorded() -> None:
    recorder = FetchRecorder()
    with pytest.raises(KeyError), recorder.attempt("metadata", "https://a.test/"):
        raise KeyError("bug")
    assert recorder.attempts == []


def test_a_fetch_that_never_started_is_noted_only_when_its_host_held_it_back() -> None:
    recorder = FetchRecorder()
    recorder.deferred(HostBusyError("busy.test"))
    recorder.deferred(RetryableJobError("node runtime error"))
    recorder.deferred(HostRateLimitedError("slow.test", 3.0))
    assert [(a.outcome, a.url) for a in recorder.attempts] == [
        (FetchOutcome.DEFERRED, None),
        (FetchOutcome.RATE_LIMITED, None),
    ]


def test_an_unchanged_document_reads_unchanged_and_a_failure_stays_itself() -> None:
    recorder = FetchRecorder()
    with recorder.attempt("metadata", "https://a.test/1") as answer:
        answer.http_status = 200
    recorder.deferred(HostBusyError("a.test"))
    rows = list(attempt_rows(7, "dynamic", recorder.attempts, unchanged=True))
    assert [(r["token_id"], r["trigger"], r["outcome"]) for r in rows] == [
        (7, "dynamic", "unchanged"),
        (7, "dynamic", "deferred"),
    ]


def test_the_routes_show_as_many_attempts_as_are_kept() -> None:
    assert ATTEMPTS_SHOWN == FETCH_ATTEMPTS_KEPT
