"""From a token URI to SIP-016 metadata rows: fetch, localize, parse, retry at once."""

from __future__ import annotations

import logging
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.deadline import check_deadline
from shared.errors import (
    HostBusyError,
    JobError,
    MetadataConnectionError,
    MetadataHttpError,
    MetadataParseError,
    MetadataTimeoutError,
    RetryableJobError,
    TooManyRequestsError,
)
from shared.indexing.fetch_counts import count_fetch, failures_counted
from shared.indexing.fetch_history import METADATA, Answer, FetchRecorder
from shared.indexing.host_slots import HostSlots
from shared.indexing.rate_limits import RateLimitedHosts
from shared.metadata.fetch import Cancellation, Fetched, MetadataFetcher
from shared.metadata.outcomes import HostClass, host_class
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

if TYPE_CHECKING:  # it fetches through polite_fetch: a runtime import would be circular
    from shared.indexing.gateway_fetch import GatewayFetcher

log = logging.getLogger(__name__)

_RETRIED_AT_ONCE = (MetadataTimeoutError, MetadataParseError)


@dataclass(frozen=True)
class LoadedMetadata:
    """A token's metadata rows (default locale first) and the hosts its documents came from."""

    rows: list[ParsedMetadata]
    fetched_from: tuple[HostClass, ...] = ()


class MetadataService:
    """Loads a token's metadata documents; one instance per process (it pools connections)."""

    def __init__(
        self,
        fetcher: MetadataFetcher,
        gateways: GatewaySettings,
        attempts: int,
        rate_limits: RateLimitedHosts | None = None,
        host_slots: HostSlots | None = None,
        gateway_fetcher: GatewayFetcher | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.gateways = gateways
        self.attempts = max(1, attempts)
        self.rate_limits = rate_limits
        self.host_slots = host_slots
        # Several gateways configured: fail over and hedge between them (docs/gateways.md).
        self.gateway_fetcher = gateway_fetcher

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
            target = fetchable_url(token_uri, self.gateways)
        except (JobError, ValueError):
            return None  # the fetch reports it properly
        if target.other_gateways and self.gateway_fetcher is not None:
            try:  # the healthiest gateway not rate limited
                target = self.gateway_fetcher.first_choice(target)
            except RetryableJobError as exc:  # every one is: counted as the fetch would be
                count_fetch("metadata", host_class(target), exc)
                raise
        hostname = urlsplit(target.url).hostname
        if hostname and self.rate_limits is not None:
            try:
                self.rate_limits.check(hostname)
            except RetryableJobError as exc:  # the fetch is put off: count it as it would be
                count_fetch("metadata", host_class(target), exc)
                raise
        return hostname or None

    def load(
        self, uri: str, token_number: int, recorder: FetchRecorder | None = None
    ) -> LoadedMetadata:
        """Timeouts and parse errors are retried at once; other errors end the token. Each
        fetch is noted in `recorder` (docs/fetch-history.md)."""
        for attempt in range(1, self.attempts + 1):
            fetched: list[HostClass] = []
            try:
                rows = self._load_once(uri, token_number, fetched, recorder)
                return LoadedMetadata(rows, tuple(fetched))
            except Exception as exc:
                for host in fetched:  # fetched fine, but not stored: counted now
                    count_fetch("metadata", host)
                if attempt == self.attempts or not isinstance(exc, _RETRIED_AT_ONCE):
                    raise
                log.info("metadata attempt %d for %s failed: %s", attempt, uri, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_once(
        self,
        uri: str,
        token_number: int,
        fetched: list[HostClass],
        recorder: FetchRecorder | None,
    ) -> list[ParsedMetadata]:
        token_uri = token_specific_uri(uri, token_number)
        document = self.document(token_uri, fetched, recorder)
        locales: dict[str, tuple[dict[str, Any], str]] = {}
        localization = localization_locales(document)
        if localization is not None:
            template, _default, others = localization
            for locale in others:
                locale_uri = token_specific_uri(template, token_number, locale)
                locales[locale] = (self.document(locale_uri, fetched, recorder), locale_uri)
        return build_metadata(document, token_uri, locales)

    def document(
        self, uri: str, fetched: list[HostClass], recorder: FetchRecorder | None = None
    ) -> dict[str, Any]:
        """One document; a failure is counted now, a success is added to `fetched` (counted
        when its token is stored: docs/freshness.md#fetch-outcomes); the attempt is noted in
        `recorder` (docs/fetch-history.md)."""
        check_deadline(f"fetching {uri[:100]}")
        if is_data_uri(uri):  # no host to rate-limit (docs/reference-differences.md#data-uris)
            with failures_counted("metadata", HostClass.DATA_URI):
                document = parse_metadata_json(decode_data_uri(uri), uri)
            fetched.append(HostClass.DATA_URI)
            return document
        target = fetchable_url(uri, self.gateways)
        host = host_class(target)
        recording = recorder.attempt(METADATA, target.url) if recorder else nullcontext(Answer())
        with failures_counted("metadata", host), recording as answer:
            document = self._fetch_document(uri, target, answer)
        fetched.append(host)
        return document

    def _fetch_document(self, uri: str, target: FetchableUrl, answer: Answer) -> dict[str, Any]:
        wait_s = self.host_slots.max_wait_s if self.host_slots is not None else 0.0
        if self.gateway_fetcher is not None:
            fetched = self.gateway_fetcher.fetch(target, wait_s=wait_s)
        else:
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
    cancelled: Cancellation | None = None,
) -> Fetched:
    """Fetch `target` unless its host is rate limited, holding one of the host's slots (this
    thread waits up to `wait_s` for one, unless it already holds one of that host); a
    429 makes this process skip the host at once (the job records it for the others).
    Setting `cancelled` stops the fetch (FetchCancelledError)."""
    hostname = urlsplit(target.url).hostname or ""
    if rate_limits is not None and hostname:
        rate_limits.check(hostname)
    slot = host_slots.slot(hostname, wait_s) if host_slots and hostname else nullcontext()
    limits = host_slots.limits if host_slots is not None and hostname else None
    try:
        with slot:
            started = time.monotonic()
            try:
                fetched = fetcher.fetch(target.url, target.headers, max_bytes, cancelled)
            except (TooManyRequestsError, MetadataTimeoutError, MetadataHttpError) as exc:
                overload = _overload(exc)
                if limits is not None and overload is not None:
                    # Reported while this fetch still holds its slot: the cut is taken from
                    # what the host had in flight, this fetch included.
                    limits.overloaded(hostname, overload)
                raise
    except TooManyRequestsError as exc:
        if limits is not None and exc.retry_after_s is None:
            # No time given: too many at once. The cut limit is the answer; the token
            # comes back in a moment, no retry spent (docs/host-slots.md#adaptive).
            raise HostBusyError(hostname, retry_after_s=1.0 + random.random()) from exc  # noqa: S311
        if rate_limits is not None:
            rate_limits.note(exc.hostname, exc.retry_after_s)
        raise
    if limits is not None:
        limits.succeeded(hostname, time.monotonic() - started)
    return fetched


def _overload(exc: TooManyRequestsError | MetadataTimeoutError | MetadataHttpError) -> str | None:
    """Whether a failed fetch says its host is overloaded, and how: a 429, a timeout, a 5xx
    answer or no answer at all (refused, reset). Another 4xx is the token's own problem."""
    if isinstance(exc, TooManyRequestsError):
        return "429"
    if isinstance(exc, MetadataTimeoutError):
        return "timeout"
    if isinstance(exc, MetadataConnectionError):
        return "connection"
    return "5xx" if exc.status is not None and exc.status >= 500 else None
