"""HTTP GET of untrusted metadata URLs within size, time and redirect limits (and the POST of
webhook deliveries, under the same guard, following no redirect).

The exchanges run on libcurl (see `shared.curl_handles`), but every connection is still
opened by the NetGuard: libcurl is told the host's checked addresses (it never resolves a
name itself) and asks us for each new socket, which the guard's connector opens. The limits
and the guard: docs/token-processing.md#limits-and-the-ssrf-guard.

A fetch given a `Cancellation` can be stopped from another thread at once: the sockets libcurl
holds for the fetching thread are shut down, which wakes libcurl wherever it waits on them
(docs/gateways.md#hedging).
"""

from __future__ import annotations

import email.utils
import math
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import pycurl

from shared.curl_handles import ThreadHandles, error_parts
from shared.errors import (
    FetchCancelledError,
    MetadataConnectionError,
    MetadataHttpError,
    MetadataServerError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    TooManyRequestsError,
)
from shared.metadata.netguard import BlockedAddressError, NetGuard

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
# The body of a redirect or an error answer is not read: past this much it is cut off.
_SKIPPED_BODY_BYTES = 65536
# Checked addresses are reused this long, so keep-alive fetches skip the resolver.
_RESOLVED_TTL_S = 30.0
_RESOLVED_MAX_HOSTS = 4096


@dataclass(frozen=True)
class FetchLimits:
    """How long and how much an untrusted server may make us wait for and read."""

    timeout_s: float = 30.0  # connect, and read inactivity
    total_timeout_s: float = 60.0  # the whole exchange, redirects included
    max_bytes: int = 1_000_000
    max_redirects: int = 5
    max_header_bytes: int = 65536


@dataclass(frozen=True)
class Fetched:
    """A successful GET: the final answer's status, body and Content-Type; `verified` when
    the body is IPFS content checked against its CID (docs/gateways.md#verified-content);
    `elapsed_s`, how long the request took from being sent to its last byte (redirects
    included, waits for a host's slot not), when known."""

    status: int
    body: bytes
    content_type: str | None = None
    verified: bool = False
    elapsed_s: float | None = None


class Cancellation:
    """Stops a fetch from another thread (FetchCancelledError), without waiting for libcurl
    to look: `set()` shuts down the sockets of the handle the fetch runs on (its connection,
    and the handle's idle kept ones, which libcurl then drops as dead), so a read or write
    libcurl waits for ends at once; a connection the fetch would open after that is refused.
    One thread cancels, the fetching thread runs; a cancellation serves one fetch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._connections: _Connections | None = None  # the running exchange's, if any

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set = True
            if self._connections is not None:
                self._connections.shut_down()

    def _watch(self, connections: _Connections | None) -> None:
        """The exchange now running uses `connections` (None: it ended). Once this returns
        with None, `set()` touches the handle no more: its next fetch is not this one's."""
        with self._lock:
            self._connections = connections


class _Connections:
    """The sockets libcurl holds open for one handle (the connection in use and the kept
    ones), by descriptor, so that a cancellation can shut them down from another thread.

    libcurl tells us of each socket (its sockopt callback: after our open-socket callback,
    with the descriptor it uses) and closes each through us (its close-socket callback), so a
    descriptor is shut down only while libcurl still holds it: never a number reused since."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[int] = set()
        self.cancelled: Cancellation | None = None  # the running fetch's, if cancellable

    def opened(self, fd: int, _purpose: int) -> int:
        """A socket the guard's connector opened (already connected): kept track of, unless
        the fetch was cancelled meanwhile (then libcurl drops it and fails the fetch)."""
        with self._lock:
            self._open.add(fd)
        cancelled = self.cancelled
        if cancelled is not None and cancelled.is_set():  # set() may have run before add
            return int(pycurl.SOCKOPT_ERROR)
        return int(pycurl.SOCKOPT_ALREADY_CONNECTED)

    def closed(self, fd: int) -> int:
        with self._lock:  # closed under the lock: `shut_down` never meets a reused number
            self._open.discard(fd)
            os.close(fd)
        return 0

    def shut_down(self) -> None:
        """Shut down every socket the handle holds: libcurl's poll wakes at once, its read
        ends (the server is not told to wait: both directions are shut)."""
        with self._lock:
            for fd in self._open:
                _shut_down(fd)


def _shut_down(fd: int) -> None:
    sock = socket.socket(fileno=fd)  # borrowed: detached below, never closed here
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected (any more): nothing to wake
    finally:
        sock.detach()


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes


class MetadataFetcher:
    """GETs untrusted URLs over keep-alive connections that all pass the NetGuard."""

    def __init__(
        self,
        limits: FetchLimits,
        guard: NetGuard,
        user_agent: str = "stacks-token-metadata",
    ) -> None:
        self._limits = limits
        self._guard = guard
        self._user_agent = user_agent
        # Each fetching thread keeps its own connections (so at most one per host per thread).
        self._handles = ThreadHandles(self._configure)
        self._connections = threading.local()  # the `_Connections` of this thread's handle
        self._resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._resolved_lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        """The body size a fetch reads at most unless it asks for another limit."""
        return self._limits.max_bytes

    @property
    def total_timeout_s(self) -> float:
        """The longest one fetch lasts, redirects included."""
        return self._limits.total_timeout_s

    def fetch_bytes(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        cancelled: Cancellation | None = None,
    ) -> bytes:
        """The body of a URL, mapping every failure to the domain error that ends the job.
        Setting `cancelled` (from another thread) stops the fetch at once with
        FetchCancelledError."""
        return self.fetch(url, headers, max_bytes, cancelled).body

    def fetch(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        cancelled: Cancellation | None = None,
    ) -> Fetched:
        """`fetch_bytes`, with the answer's status."""
        limit = self._limits.max_bytes if max_bytes is None else max_bytes
        _require_http(url, url)
        started = time.monotonic()
        deadline = started + self._limits.total_timeout_s
        current = url
        sent_headers = dict(headers or {})
        for _ in range(self._limits.max_redirects + 1):
            answer = self._get(current, sent_headers, limit, deadline, cancelled=cancelled)
            target = _redirect_target(answer, current)
            if target is None:
                _check_status(answer, url, current)
                return Fetched(
                    answer.status,
                    answer.body,
                    answer.headers.get("content-type"),
                    elapsed_s=time.monotonic() - started,
                )
            if not _same_origin(current, target):
                sent_headers = {}  # gateway credentials stay with the gateway
            current = target
        raise MetadataHttpError(f"Too many redirects (over {self._limits.max_redirects}): {url}")

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST `body` to an untrusted URL (a webhook endpoint) under the same guard and time
        limits; returns the answer's status. No redirect is followed: a 3xx is returned as
        it is. The answer's body is read up to the size limit (beyond it, a 2xx answer raises
        MetadataSizeExceededError) and thrown away."""
        _require_http(url, url)
        deadline = time.monotonic() + self._limits.total_timeout_s
        # No `Expect: 100-continue` wait for bodies over 1 KiB.
        sent_headers = {**headers, "Expect": ""}
        answer = self._get(url, sent_headers, self._limits.max_bytes, deadline, payload=body)
        return answer.status

    def close(self) -> None:
        """Close every kept connection."""
        self._handles.close()

    def __enter__(self) -> MetadataFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _configure(self, handle: pycurl.Curl) -> None:
        handle.setopt(pycurl.USERAGENT, self._user_agent)
        # The guard's connector hands libcurl a connected socket; libcurl's descriptors are
        # tracked from then until it closes them, for cancellations.
        connections = _Connections()
        handle.setopt(pycurl.SOCKOPTFUNCTION, connections.opened)
        handle.setopt(pycurl.CLOSESOCKETFUNCTION, connections.closed)
        self._connections.value = connections
        handle.setopt(pycurl.LOW_SPEED_LIMIT, 1)  # read inactivity, in whole seconds
        handle.setopt(pycurl.LOW_SPEED_TIME, max(1, math.ceil(self._limits.timeout_s)))
        # Ask for every encoding libcurl decodes (gzip, deflate, br) and decode what comes:
        # the body callback sees decoded bytes, so the size limit holds for a compression
        # bomb too, and no more than one decoded chunk past it is ever held.
        handle.setopt(pycurl.ACCEPT_ENCODING, "")

    def _get(
        self,
        url: str,
        headers: dict[str, str],
        max_bytes: int,
        deadline: float,
        payload: bytes | None = None,
        cancelled: Cancellation | None = None,
    ) -> _Answer:
        """One GET (a POST of `payload` when given), no longer than the time left before
        `deadline`."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MetadataTimeoutError(f"Timed out fetching {url}")
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            addresses = self._checked_addresses(host, port)
        except OSError as exc:  # the resolver failed (a refused address is not an OSError)
            raise MetadataConnectionError(
                f"Could not fetch {url}: {type(exc).__name__}: {exc}"
            ) from exc
        connect_timeout = min(self._limits.timeout_s, remaining)
        exchange = _Exchange(
            url, host, self._guard, addresses, connect_timeout, max_bytes, self._limits
        )
        exchange.cancelled = cancelled
        handle = self._handles.get()
        connections: _Connections = self._connections.value
        connections.cancelled = cancelled
        if cancelled is not None:
            cancelled._watch(connections)
            if cancelled.is_set():  # set() before the watch: it shut nothing down
                cancelled._watch(None)
                connections.cancelled = None
                raise FetchCancelledError(url)
        handle.setopt(pycurl.URL, url)
        if ":" not in host:  # an IPv6 literal is not looked up; the callback checks it anyway
            pinned = ",".join(map(_bracketed, addresses))
            handle.setopt(pycurl.RESOLVE, [f"{host}:{port}:{pinned}"])
        if headers:
            lines = [f"{name}: {value}" for name, value in headers.items()]
            handle.setopt(pycurl.HTTPHEADER, lines)
        else:
            handle.unsetopt(pycurl.HTTPHEADER)  # an empty list would keep the last request's
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(connect_timeout * 1000)))
        handle.setopt(pycurl.TIMEOUT_MS, max(1, int(remaining * 1000)))
        handle.setopt(pycurl.OPENSOCKETFUNCTION, exchange.open_socket)
        handle.setopt(pycurl.HEADERFUNCTION, exchange.on_header)
        handle.setopt(pycurl.WRITEFUNCTION, exchange.on_body)
        if payload is not None:
            handle.setopt(pycurl.POSTFIELDSIZE, len(payload))
            handle.setopt(pycurl.COPYPOSTFIELDS, payload)
        try:
            handle.perform()
        except pycurl.error as exc:
            exchange.raise_for(exc)
        finally:
            # Drop the callbacks' references to this exchange.
            handle.setopt(pycurl.OPENSOCKETFUNCTION, _no_socket)
            if cancelled is not None:
                cancelled._watch(None)
            connections.cancelled = None
            exchange.close_sockets()
            if payload is not None:
                handle.setopt(pycurl.HTTPGET, 1)  # the handle's next request is a GET again
        return _Answer(exchange.status, exchange.headers, b"".join(exchange.chunks))

    def _checked_addresses(self, host: str, port: int) -> list[str]:
        """The guard's checked addresses of a host, remembered for a little while."""
        key = (host.lower(), port)
        now = time.monotonic()
        with self._resolved_lock:
            cached = self._resolved.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        addresses = self._guard.checked_addresses(host, port)
        with self._resolved_lock:
            if len(self._resolved) >= _RESOLVED_MAX_HOSTS:
                self._resolved.clear()
            self._resolved[key] = (now + _RESOLVED_TTL_S, addresses)
        return addresses


class _Exchange:
    """What one GET's callbacks learn: the answer so far, or why it was cut short."""

    def __init__(
        self,
        url: str,
        host: str,
        guard: NetGuard,
        addresses: list[str],
        connect_timeout_s: float,
        max_bytes: int,
        limits: FetchLimits,
    ) -> None:
        self.url = url
        self.host = host
        self.guard = guard
        self.addresses = frozenset(addresses)
        self.connect_timeout_s = connect_timeout_s
        self.max_bytes = max_bytes
        self.max_header_bytes = limits.max_header_bytes
        self.status = 0
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.chunks: list[bytes] = []
        self.size = 0
        self.failure: Exception | None = None  # a limit we enforced
        self.connect_error: BaseException | None = None
        self.skipped = 0  # body bytes of a redirect or error answer, thrown away
        self.sockets: list[socket.socket] = []
        self.cancelled: Cancellation | None = None

    def open_socket(self, purpose: int, address: Any) -> socket.socket | int:
        """A connection for libcurl, opened by the guard's connector to a checked address."""
        ip = str(address.addr[0])
        if self.cancelled is not None and self.cancelled.is_set():
            return pycurl.SOCKET_BAD  # e.g. libcurl retrying a kept connection we shut down
        try:
            if ip not in self.addresses:  # libcurl only knows the checked ones; never trust it
                raise BlockedAddressError(self.host, ip, "unchecked")
            port = int(address.addr[1])
            sock = self.guard.connector(ip, port, self.connect_timeout_s)
        except Exception as exc:  # an exception must not escape into libcurl
            self.connect_error = exc
            return pycurl.SOCKET_BAD
        self.sockets.append(sock)  # libcurl keeps a duplicate of the descriptor
        return sock

    def close_sockets(self) -> None:
        """Close our copies of the sockets handed to libcurl (it keeps its own)."""
        for sock in self.sockets:
            sock.close()

    def on_header(self, line: bytes) -> int | None:
        self.header_bytes += len(line)
        if self.header_bytes > self.max_header_bytes:
            limit = self.max_header_bytes
            return self._stop(MetadataHttpError(f"Headers of over {limit} bytes from {self.url}"))
        if line.startswith(b"HTTP/"):  # a status line: a new response (after a 1xx) starts
            fields = line.split(None, 2)
            self.status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
            self.headers = {}
            return None
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            self.headers[name.strip().lower()] = value.strip()
        elif not line.strip() and 200 <= self.status < 300:
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                return self._stop(
                    MetadataSizeExceededError(
                        f"{self.url} declares {declared} bytes (max {self.max_bytes})"
                    )
                )
        return None

    def on_body(self, data: bytes) -> int | None:
        if not 200 <= self.status < 300:
            self.skipped += len(data)
            return 0 if self.skipped > _SKIPPED_BODY_BYTES else None
        self.size += len(data)
        if self.size > self.max_bytes:
            return self._stop(
                MetadataSizeExceededError(f"{self.url} sent over {self.max_bytes} bytes")
            )
        self.chunks.append(data)
        return None

    def _stop(self, failure: Exception) -> int:
        self.failure = failure
        return 0  # anything but the length handed to us makes libcurl abort the transfer

    def raise_for(self, exc: pycurl.error) -> None:
        """Map a failed perform to the domain error; an answer cut short on purpose is fine."""
        code, message = error_parts(exc)
        url = self.url
        if self.failure is not None:
            raise self.failure from None
        if self.cancelled is not None and self.cancelled.is_set():
            raise FetchCancelledError(url) from None
        if self.skipped > _SKIPPED_BODY_BYTES and code == pycurl.E_WRITE_ERROR:
            return  # the status and headers are all we wanted
        cause = self.connect_error
        if isinstance(cause, BlockedAddressError):
            raise cause
        if isinstance(cause, TimeoutError) or code == pycurl.E_OPERATION_TIMEDOUT:
            raise MetadataTimeoutError(f"Timed out fetching {url}") from exc
        if cause is not None:
            raise MetadataConnectionError(
                f"Could not fetch {url}: {type(cause).__name__}: {cause}"
            ) from cause
        raise MetadataConnectionError(
            f"Could not fetch {url}: {message} (curl error {code})"
        ) from exc


def _no_socket(purpose: int, address: Any) -> int:
    return int(pycurl.SOCKET_BAD)


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a 429 asks us to wait: a positive number or a future HTTP date, else None."""
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


def is_http_url(url: str) -> bool:
    """An http(s) URL with a host and a well-formed port: what may be fetched or posted to."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        return valid and (parts.port or 0) >= 0  # `.port` raises on a malformed port
    except ValueError:
        return False


def _require_http(url: str, origin: str) -> None:
    """Only http(s) URLs may be fetched."""
    if not is_http_url(url):
        raise MetadataHttpError(f"Refusing to fetch {url} (from {origin}): not an http(s) URL")


def _redirect_target(answer: _Answer, current: str) -> str | None:
    """Where a redirect points, checked; None when the answer is not a redirect."""
    location = answer.headers.get("location")
    if answer.status not in _REDIRECT_STATUSES or not location:
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


def _check_status(answer: _Answer, url: str, current: str) -> None:
    """Raise the domain error for a non-2xx answer; 429 is rate limiting, not a bad token."""
    status = answer.status
    if status == 429:
        retry_after = parse_retry_after(answer.headers.get("retry-after"), datetime.now(UTC))
        raise TooManyRequestsError(current, urlsplit(url).hostname or "", retry_after)
    if not 200 <= status < 300:
        error = MetadataServerError if 500 <= status < 600 else MetadataHttpError
        raise error(f"HTTP {status} from {current}", status=status)
