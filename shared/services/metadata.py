"""From a token URI to SIP-016 metadata rows: fetch, localize, parse, retry at once."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from shared.deadline import check_deadline
from shared.errors import MetadataParseError, MetadataTimeoutError
from shared.metadata.fetch import MetadataFetcher
from shared.metadata.parse import (
    ParsedMetadata,
    build_metadata,
    localization_locales,
    parse_metadata_json,
)
from shared.metadata.uris import (
    GatewaySettings,
    decode_data_uri,
    fetchable_url,
    is_data_uri,
    token_specific_uri,
)
from shared.services.host_slots import HostSlots
from shared.services.rate_limits import RateLimitedHosts

log = logging.getLogger(__name__)


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

    def load(self, uri: str, token_number: int) -> list[ParsedMetadata]:
        """Timeouts and parse errors are retried at once; other errors end the token."""
        for attempt in range(1, self.attempts + 1):
            try:
                return self._load_once(uri, token_number)
            except (MetadataTimeoutError, MetadataParseError) as exc:
                if attempt == self.attempts:
                    raise
                log.info("metadata attempt %d for %s failed: %s", attempt, uri, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_once(self, uri: str, token_number: int) -> list[ParsedMetadata]:
        token_uri = token_specific_uri(uri, token_number)
        document = self.document(token_uri)
        locales: dict[str, tuple[dict[str, Any], str]] = {}
        localization = localization_locales(document)
        if localization is not None:
            template, _default, others = localization
            for locale in others:
                locale_uri = token_specific_uri(template, token_number, locale)
                locales[locale] = (self.document(locale_uri), locale_uri)
        return build_metadata(document, token_uri, locales)

    def document(self, uri: str) -> dict[str, Any]:
        check_deadline(f"fetching {uri[:100]}")
        if is_data_uri(uri):  # no host to rate-limit (fix 4)
            return parse_metadata_json(decode_data_uri(uri), uri)
        target = fetchable_url(uri, self.gateways)
        hostname = urlsplit(target.url).hostname or ""
        if self.rate_limits is not None and hostname:
            self.rate_limits.check(hostname)
        if self.host_slots is None or not hostname:
            return parse_metadata_json(self.fetcher.fetch_text(target.url, target.headers), uri)
        with self.host_slots.slot(hostname):
            text = self.fetcher.fetch_text(target.url, target.headers)
        return parse_metadata_json(text, uri)
