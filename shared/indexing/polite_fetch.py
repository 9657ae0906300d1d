"""From a token URI to SIP-016 metadata rows: fetch, localize, parse, retry at once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter

from shared.deadline import check_deadline
from shared.errors import (
    HostBusyError,
    JobError,
    MetadataHttpError,
    MetadataParseError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    RetryableJobError,
    TooManyRequestsError,
)
from shared.indexing.fetch_history import METADATA, Answer, FetchRecorder
from shared.indexing.host_slots import HostSlots
from shared.indexing.rate_limits import RateLimitedHosts
from shared.metadata.fetch import Fetched, MetadataFetcher
from shared.metadata.netguard import BlockedAddressError
from shared.metadata.parse import (
    ParsedMetadata,
    build_metadata,
    localization_locales,
    parse_metadata_json,
)
from shared.metadata.uris import (
    FetchableUrl,
    GatewaySettings,
    decode_data_uri,
    fetchable_url,
    is_data_uri,
    token_specific_uri,
)

log = logging.getLogger(__name__)

# In the process's default registry: workers export it (workers/metrics.py); the API never
# imports this module.
FETCHES = Counter(
    "token_metadata_fetch_total",
    "Metadata documents and images fetched, by kind (metadata, image), host class "
    "(ipfs_gateway, arweave_gateway, data, other) and outcome",
    ["kind", "host_class", "outcome"],
)
# First match wins: subclasses before their bases.
FETCH_OUTCOMES: tuple[tuple[type[Exception], str], ...] = (
    (MetadataTimeoutError, "timeout"),
    (MetadataSizeExceededError, "too_large"),
    (MetadataParseError, "parse_error"),
    (BlockedAddressError, "blocked"),
    (MetadataHttpError, "http_error"),
    (TooManyRequestsError, "rate_limited"),
    (HostBusyError, "host_busy"),
    (RetryableJobError, "skipped"),  # a host still rate limited: not even asked
)


def host_class(target: FetchableUrl) -> str:
    return f"{target.gateway}_gateway" if target.gateway else "other"


@contextmanager
def counted_fetch(host_class: str, kind: str = "metadata") -> Iterator[None]:
    """Count one fetch (and parse) of a document or image by how it ended."""
    try:
        yield
    except Exception as exc:
        outcome = next((name for error, name in FETCH_OUTCOMES if isinstance(exc, error)), "error")
        FETCHES.labels(kind, host_class, outcome).inc()
        raise
    FETCHES.labels(kind, host_class, "ok").inc()


class MetadataService:
    """Loads a token's metadata documents; one instance per process (it pools connections)."""

    def __init__(
        self,
        fetcher: MetadataFetcher,
        gateways: GatewaySettings,
        attempts: int,
        rate_limits: RateLimitedHosts | None = None,
        host_slots: HostSlots | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.gateways = gateways
        self.attempts = max(1, attempts)
        self.rate_limits = rate_limits
        self.host_slots = host_slots

    def host_to_wait_for(self, uri: str, token_number: int) -> str | None:
        """The host a token's first document comes from, when fetches there take slots
        (None for `data:` URIs and URIs the fetch itself will refuse). Raises if that host is
        rate limited, so a token does not wait for a slot it would not use."""
        if self.host_slots is None:
            return None
        try:
            token_uri = token_specific_uri(uri, token_number)
            if is_data_uri(token_uri):
                return None
            hostname = urlsplit(fetchable_url(token_uri, self.gateways).url).hostname
        except (JobError, ValueError):
            return None  # the fetch reports it properly
        if hostname and self.rate_limits is not None:
            self.rate_limits.check(hostname)
        return hostname or None

    def load(
        self, uri: str, token_number: int, recorder: FetchRecorder | None = None
    ) -> list[ParsedMetadata]:
        """Timeouts and parse errors are retried at once; other errors end the token. Each
        fetch is noted in `recorder` (docs/fetch-history.md)."""
        for attempt in range(1, self.attempts + 1):
            try:
                return self._load_once(uri, token_number, recorder)
            except (MetadataTimeoutError, MetadataParseError) as exc:
                if attempt == self.attempts:
                    raise
                log.info("metadata attempt %d for %s failed: %s", attempt, uri, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_once(
        self, uri: str, token_number: int, recorder: FetchRecorder | None
    ) -> list[ParsedMetadata]:
        token_uri = token_specific_uri(uri, token_number)
        document = self.document(token_uri, recorder)
        locales: dict[str, tuple[dict[str, Any], str]] = {}
        localization = localization_locales(document)
        if localization is not None:
            template, _default, others = localization
            for locale in others:
                locale_uri = token_specific_uri(template, token_number, locale)
                locales[locale] = (self.document(locale_uri, recorder), locale_uri)
        return build_metadata(document, token_uri, locales)

    def document(self, uri: str, recorder: FetchRecorder | None = None) -> dict[str, Any]:
        check_deadline(f"fetching {uri[:100]}")
        if is_data_uri(uri):  # no host to rate-limit (docs/reference-differences.md#data-uris)
            with counted_fetch("data"):
                return parse_metadata_json(decode_data_uri(uri), uri)
        target = fetchable_url(uri, self.gateways)
        recording = recorder.attempt(METADATA, target.url) if recorder else nullcontext(Answer())
        with counted_fetch(host_class(target)), recording as answer:
            return self._fetch_document(uri, target, answer)

    def _fetch_document(self, uri: str, target: FetchableUrl, answer: Answer) -> dict[str, Any]:
        wait_s = self.host_slots.max_wait_s if self.host_slots is not None else 0.0
        fetched = polite_fetch(
            self.fetcher, target, self.rate_limits, self.host_slots, wait_s=wait_s
        )
        answer.http_status, answer.bytes = fetched.status, len(fetched.body)
        return parse_metadata_json(fetched.body.decode("utf-8-sig", errors="replace"), uri)


def polite_fetch(
    fetcher: MetadataFetcher,
    target: FetchableUrl,
    rate_limits: RateLimitedHosts | None,
    host_slots: HostSlots | None,
    max_bytes: int | None = None,
    *,
    wait_s: float = 0.0,
) -> Fetched:
    """Fetch `target` unless its host is rate limited, holding one of the host's slots (this
    thread waits up to `wait_s` for one, unless it already holds one of that host); a
    429 makes this process skip the host at once (the job records it for the others)."""
    hostname = urlsplit(target.url).hostname or ""
    if rate_limits is not None and hostname:
        rate_limits.check(hostname)
    slot = host_slots.slot(hostname, wait_s) if host_slots and hostname else nullcontext()
    try:
        with slot:
            return fetcher.fetch(target.url, target.headers, max_bytes)
    except TooManyRequestsError as exc:
        if rate_limits is not None:
            rate_limits.note(exc.hostname, exc.retry_after_s)
        raise
