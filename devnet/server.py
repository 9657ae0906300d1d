"""Runs the simulated node RPC and metadata host together, each on a 127.0.0.1 port served by
a daemon thread, and counts requests per path so tests can assert on the traffic."""

from __future__ import annotations

import contextlib
import email.utils
import functools
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

from devnet.metadata_host import MetadataHost
from devnet.node import NodeRpc, Response
from devnet.scenario import Contract, Scenario

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class App(Protocol):
    def route(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; `path` comes without its query string, header names lower-cased."""
        ...


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server bound to 127.0.0.1 that hands every request to its app."""

    daemon_threads = True
    # Workers open a hundred connections at once; the default backlog of 5 resets them.
    request_queue_size = 1024

    def __init__(self, app: App, port: int = 0) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self.app = app
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._in_flight = 0
        self._peak_in_flight = 0
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_port}"

    def count(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    def request_count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def peak_in_flight(self) -> int:
        """The most requests this server has answered at once so far."""
        with self._lock:
            return self._peak_in_flight

    def request_counts(self) -> dict[str, int]:
        """A snapshot of requests served so far, by path (without the query string)."""
        with self._lock:
            return dict(self._counts)

    def start(self) -> None:
        # A short poll interval keeps stop() quick.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cut kept-alive connections, and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real node and CDNs
    # Status line, headers and body leave in one write (flushed after each request): written
    # apart, the body waited for the client's delayed ACK, 40 ms on every exchange.
    wbufsize = 256 * 1024
    disable_nagle_algorithm = True
    server: LoopbackServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        self.server.count(path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        # In flight from the request's arrival until its answer is ready: always within the
        # span in which the client waits for it, so a peak can be compared with client caps.
        self.server.begin()
        try:
            response = self.server.app.route(method, path, headers, body)
        finally:
            self.server.end()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, formatted once a second rather than for every response."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        return _http_date(int(time.time()))

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


@functools.lru_cache(maxsize=2)
def _http_date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


class Devnet:
    """`with Devnet(scenario) as net:` serves on 127.0.0.1; port 0 picks free ports."""

    def __init__(self, scenario: Scenario, *, node_port: int = 0, metadata_port: int = 0) -> None:
        self._scenario = scenario
        self._node_port = node_port
        self._metadata_port = metadata_port
        self.node: LoopbackServer | None = None
        self.metadata_host: LoopbackServer | None = None
        self._apps: tuple[NodeRpc, MetadataHost] | None = None

    def start(self) -> Devnet:
        """Bind both ports (the metadata host first: the node's URIs point at it) and serve."""
        documents = MetadataHost(self._scenario)
        host = LoopbackServer(documents, self._metadata_port)
        try:
            rpc = NodeRpc(self._scenario, metadata_url=host.url)
            node = LoopbackServer(rpc, self._node_port)
        except OSError:
            host.server_close()
            raise
        host.start()
        node.start()
        self.metadata_host, self.node, self._apps = host, node, (rpc, documents)
        return self

    def stop(self) -> None:
        for server in (self.node, self.metadata_host):
            if server is not None:
                server.stop()
        self.node = self.metadata_host = self._apps = None

    @property
    def node_url(self) -> str:
        return self._running()[0].url

    @property
    def metadata_url(self) -> str:
        """What `{metadata}` in token URI templates resolves to."""
        return self._running()[1].url

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        """Swap what both servers answer, e.g. after a test grew the chain."""
        self._scenario = scenario
        for app in self._apps or ():
            app.scenario = scenario

    def deploy(self, *contracts: Contract) -> None:
        """Make the node and metadata host know about newly deployed contracts."""
        self.scenario = self._scenario.with_contracts(*contracts)

    def _running(self) -> tuple[LoopbackServer, LoopbackServer]:
        if self.node is None or self.metadata_host is None:
            raise RuntimeError("Devnet is not started")
        return self.node, self.metadata_host

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
