"""The urllib3/requests plumbing under the fetcher: connections opened by the NetGuard, and
per-fetch deadlines that shut the sockets a slow server keeps us waiting on."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from shared.metadata.netguard import NetGuard

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection
    from urllib3.response import BaseHTTPResponse

_FALLBACK_TIMEOUT_S = 30.0  # only if urllib3 was given no connect timeout
_exchange_lock = threading.Lock()
_current = threading.local()


class ConnectionTracker(Protocol):
    """Told which pooled connection a thread checks out and back in (for fetch deadlines)."""

    def claim(self, connection: BaseHTTPConnection) -> None: ...

    def release(self, connection: BaseHTTPConnection | None) -> None: ...


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection, HTTP or HTTPS, is opened by the guard."""

    def __init__(
        self,
        guard: NetGuard,
        tracker: ConnectionTracker | None = None,
        connections_per_host: int = 16,
    ) -> None:
        self._guard = guard  # set first: the base constructor builds the pool manager
        self._tracker = tracker
        # Keep-alive connections kept per host: as many as may fetch from it at once.
        super().__init__(pool_connections=64, pool_maxsize=connections_per_host, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Build our pool manager instead of urllib3's default one."""
        self.poolmanager = _GuardedPoolManager(
            self._guard,
            self._tracker,
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            **pool_kwargs,
        )


class _GuardedHTTPConnection(HTTPConnection):
    """An urllib3 connection whose socket comes from the guard; TLS still uses the host name."""

    def __init__(self, *args: Any, guard: NetGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    def _new_conn(self) -> socket.socket:
        """Open the socket through the guard, mapping errors as urllib3 itself does."""
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        try:
            sock = self._guard.connect(self.host, self.port, timeout or _FALLBACK_TIMEOUT_S)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a connection: {exc}") from exc
        for option in self.socket_options or ():
            sock.setsockopt(*option)
        return sock


class _GuardedHTTPSConnection(_GuardedHTTPConnection, HTTPSConnection):
    """The HTTPS variant: certificates are verified against the host name (SNI too)."""


class _TrackedHTTPPool(HTTPConnectionPool):
    """A pool of guarded connections that reports check-outs and check-ins to a tracker."""

    ConnectionCls = _GuardedHTTPConnection
    tracker: ConnectionTracker | None = None

    def _get_conn(self, timeout: float | None = None) -> BaseHTTPConnection:
        connection = super()._get_conn(timeout)
        if self.tracker is not None:
            self.tracker.claim(connection)
        return connection

    def _put_conn(self, conn: BaseHTTPConnection | None) -> None:
        if self.tracker is not None:
            self.tracker.release(conn)
        super()._put_conn(conn)


class _TrackedHTTPSPool(_TrackedHTTPPool, HTTPSConnectionPool):
    """The HTTPS variant."""

    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    """Builds per-host pools of guarded, tracked connections."""

    def __init__(self, guard: NetGuard, tracker: ConnectionTracker | None, **kw: Any) -> None:
        super().__init__(**kw)
        self._guard = guard
        self._tracker = tracker
        self.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        """Hand every new per-host pool the guard and the tracker."""
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.conn_kw["guard"] = self._guard
        if isinstance(pool, _TrackedHTTPPool):
            pool.tracker = self._tracker
        return pool

    def clear(self) -> None:
        """Close idle pooled connections now; urllib3 2 otherwise waits for garbage collection."""
        pools = [self.pools.get(key) for key in self.pools.keys()]  # noqa: SIM118  # not a dict
        super().clear()
        for pool in pools:
            if pool is not None:
                pool.close()


class Exchange:
    """One fetch's deadline: at the deadline a timer shuts the sockets it is reading from."""

    def __init__(self, total_timeout_s: float) -> None:
        self.deadline = time.monotonic() + total_timeout_s
        self.expired = False
        self._done = False
        self._connections: list[BaseHTTPConnection] = []  # shut while awaiting headers
        self._responses: list[BaseHTTPResponse] = []  # shut while streaming a body
        self._timer = threading.Timer(total_timeout_s, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Exchange:
        _current.exchange = self
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with _exchange_lock:
            self._done = True
        _current.exchange = None
        self._timer.cancel()
        self._timer.join()

    def claim(self, connection: BaseHTTPConnection) -> None:
        """Track a connection this fetch checked out of a pool."""
        with _exchange_lock:
            self._connections.append(connection)

    def watch(self, response: requests.Response) -> None:
        """Track a response whose body this fetch is about to stream."""
        with _exchange_lock:
            self._responses.append(response.raw)

    def release(self, connection: BaseHTTPConnection) -> None:
        """Forget a connection going back to its pool, so that no later fetch loses it."""
        with _exchange_lock:
            self._connections = [c for c in self._connections if c is not connection]
            self._responses = [r for r in self._responses if r.connection is not connection]

    def _expire(self) -> None:
        """Wake a read blocked on a slow server; socket timeouts only bound each single read."""
        with _exchange_lock:
            if self._done:
                return
            self.expired = True
            for connection in self._connections:
                sock = getattr(connection, "sock", None)
                with contextlib.suppress(OSError):  # already closed
                    if sock is not None:
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
            for response in self._responses:
                # A response that closes its connection owns the socket; urllib3 can shut it.
                with contextlib.suppress(OSError, RuntimeError, ValueError):
                    response.shutdown()


class _CurrentExchange:
    """Hands pool check-outs and check-ins to the calling thread's exchange."""

    def claim(self, connection: BaseHTTPConnection) -> None:
        exchange: Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None:
            exchange.claim(connection)

    def release(self, connection: BaseHTTPConnection | None) -> None:
        exchange: Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None and connection is not None:
            exchange.release(connection)


EXCHANGES = _CurrentExchange()
