"""HTTP GET of untrusted metadata URLs within size, time and redirect limits (section 6.4)."""

from __future__ import annotations

import email.utils
import http.client
import math
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from shared.errors import (
    MetadataHttpError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    TooManyRequestsError,
)
from shared.metadata.netguard import NetGuard
from shared.metadata.transport import EXCHANGES, Exchange, GuardedAdapter

_CHUNK_BYTES = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


@dataclass(frozen=True)
class FetchLimits:
    """How long and how much an untrusted server may make us wait for and read."""

    timeout_s: float = 30.0  # connect, and read inactivity
    total_timeout_s: float = 60.0  # the whole exchange, redirects included
    max_bytes: int = 1_000_000
    max_redirects: int = 5
    max_header_bytes: int = 65536


class MetadataFetcher:
    """GETs untrusted URLs over pooled keep-alive connections that all pass the NetGuard."""

    def __init__(
        self,
        limits: FetchLimits,
        guard: NetGuard,
        user_agent: str = "stacks-token-metadata",
        connections_per_host: int = 16,
    ) -> None:
        self._limits = limits
        self._session = requests.Session()
        # Proxies and .netrc from the environment would bypass the guard or leak credentials.
        self._session.trust_env = False
        self._session.headers["User-Agent"] = user_agent
        self._adapter = GuardedAdapter(
            guard, tracker=EXCHANGES, connections_per_host=connections_per_host
        )
        self._session.mount("http://", self._adapter)
        self._session.mount("https://", self._adapter)

    def fetch_text(self, url: str, headers: Mapping[str, str] | None = None) -> str:
        """The body of a metadata URL as text (UTF-8, invalid bytes replaced)."""
        return self.fetch_bytes(url, headers).decode("utf-8-sig", errors="replace")

    def fetch_bytes(
        self, url: str, headers: Mapping[str, str] | None = None, max_bytes: int | None = None
    ) -> bytes:
        """The body of a URL, mapping every failure to the domain error that ends the job."""
        limit = self._limits.max_bytes if max_bytes is None else max_bytes
        _require_http(url, url)
        with Exchange(self._limits.total_timeout_s) as exchange:
            try:
                body = self._follow(url, dict(headers or {}), limit, exchange)
            except _TRANSPORT_ERRORS as exc:
                raise _transport_error(url, exc, exchange.expired) from exc
            if exchange.expired:
                raise MetadataTimeoutError(f"Timed out fetching {url}")
            return body

    def close(self) -> None:
        """Close every pooled connection."""
        self._session.close()

    def __enter__(self) -> MetadataFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _follow(
        self, url: str, headers: dict[str, str], max_bytes: int, exchange: Exchange
    ) -> bytes:
        """Follow redirects by hand so that every hop is checked and counted."""
        current = url
        for _ in range(self._limits.max_redirects + 1):
            with self._get(current, headers, exchange) as response:
                target = _redirect_target(response, current)
                if target is None:
                    _check_status(response, url, current)
                    return _read_body(response, max_bytes, current)
            if not _same_origin(current, target):
                headers = {}  # gateway credentials stay with the gateway
            current = target
        raise MetadataHttpError(f"Too many redirects (over {self._limits.max_redirects}): {url}")

    def _get(self, url: str, headers: dict[str, str], exchange: Exchange) -> requests.Response:
        """One GET whose timeouts never outlast the exchange's deadline."""
        timeout = min(self._limits.timeout_s, exchange.deadline - time.monotonic())
        if timeout <= 0:
            raise MetadataTimeoutError(f"Timed out fetching {url}")
        # The adapter, not Session.send: that would parse redirects and store cookies itself.
        # Prepared by hand: the session's cookie and environment merging is not needed.
        request = requests.PreparedRequest()
        request.prepare(method="GET", url=url, headers={**self._session.headers, **headers})
        response = self._adapter.send(request, stream=True, timeout=(timeout, timeout), verify=True)
        exchange.watch(response)
        header_bytes = sum(len(k) + len(v) + 4 for k, v in response.headers.items())
        if header_bytes > self._limits.max_header_bytes:
            response.close()
            limit = self._limits.max_header_bytes
            raise MetadataHttpError(f"Headers of {header_bytes} bytes (max {limit}) from {url}")
        return response


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a 429 asks us to wait: a positive number or a future HTTP date (section 4.5)."""
    if value is None:
        return None
    first = value.split(",")[0].strip()
    if _SECONDS.fullmatch(first):
        seconds = float(first)
        return seconds if seconds > 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    delta = math.ceil((_aware(when) - _aware(now)).total_seconds())
    return float(delta) if delta > 0 else None


def _aware(moment: datetime) -> datetime:
    """Read naive datetimes as UTC, as HTTP dates are."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _require_http(url: str, origin: str) -> None:
    """Only http(s) URLs may be fetched."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        valid = valid and (parts.port or 0) >= 0  # `.port` raises on a malformed port
    except ValueError:
        valid = False
    if not valid:
        raise MetadataHttpError(f"Refusing to fetch {url} (from {origin}): not an http(s) URL")


def _redirect_target(response: requests.Response, current: str) -> str | None:
    """Where a redirect points, checked; None when the response is not a redirect."""
    location = response.headers.get("Location")
    if response.status_code not in _REDIRECT_STATUSES or not location:
        return None
    try:
        target = urljoin(current, location.strip())
    except ValueError:
        target = location  # _require_http refuses it with a clear message
    _require_http(target, current)
    return target


def _same_origin(first: str, second: str) -> bool:
    """Whether two URLs share scheme, host and port."""
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _check_status(response: requests.Response, url: str, current: str) -> None:
    """Raise the domain error for a non-2xx answer; 429 is rate limiting, not a bad token."""
    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        raise TooManyRequestsError(current, urlsplit(url).hostname or "", retry_after)
    if not 200 <= status < 300:
        raise MetadataHttpError(f"HTTP {status} from {current}")


def _read_body(response: requests.Response, max_bytes: int, url: str) -> bytes:
    """Stream the body, stopping as soon as it is larger than allowed."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise MetadataSizeExceededError(f"{url} declares {declared} bytes (max {max_bytes})")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise MetadataSizeExceededError(f"{url} sent over {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _transport_error(
    url: str, exc: BaseException, expired: bool
) -> MetadataTimeoutError | MetadataHttpError:
    """Timeouts may be retried; every other transport failure is an HTTP error (section 4.4)."""
    causes = list(_causes(exc))
    if expired or _is_timeout(causes):
        return MetadataTimeoutError(f"Timed out fetching {url}")
    root = causes[-1]
    return MetadataHttpError(f"Could not fetch {url}: {type(root).__name__}: {root}")


def _is_timeout(causes: list[BaseException]) -> bool:
    """Whether a timeout is behind an error (urllib3 counts refused connections as timeouts)."""
    for cause in causes:
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            return False
        if isinstance(cause, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
            return True
    return False


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """An error and the errors it wraps, outermost first."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return
        yield current
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args else None
        if isinstance(reason, BaseException):
            current = reason
        elif isinstance(nested, BaseException):
            current = nested
        else:
            current = current.__cause__
