"""Runs the simulated node RPC and metadata hosts together, each on a loopback port served by
a daemon thread, and counts requests per path so tests can assert on the traffic."""

from __future__ import annotations

import contextlib
import email.utils
import errno
import functools
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

from devnet.metadata_host import MetadataHost
from devnet.node import NodeRpc, Response
from devnet.scenario import DEFAULT_METADATA_ADDRESS, Contract, Scenario

logger = logging.getLogger(__name__)

LOOPBACK = DEFAULT_METADATA_ADDRESS
# Port 0 picks a free port on 127.0.0.1; another program may hold that number on one of the
# other addresses, so binding every metadata server is tried up to this often, on a new port.
_PORT_ATTEMPTS = 5


class App(Protocol):
    def route(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; `path` comes without its query string, header names lower-cased."""
        ...


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server bound to a loopback address (127.0.0.1 unless told) that
    hands every request to its app."""

    daemon_threads = True
    # Workers open a hundred connections at once; the default backlog of 5 resets them.
    request_queue_size = 1024

    def __init__(self, app: App, port: int = 0, *, address: str = LOOPBACK) -> None:
        super().__init__((address, port), _Handler)
        self.address = address
        self.app = app
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._in_flight = 0
        self._peak_in_flight = 0
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.server_port}"

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
    """`with Devnet(scenario) as net:` serves the node RPC on 127.0.0.1 and one metadata host
    per address of `scenario.metadata_addresses()`, all of them on the same port number;
    port 0 picks free ports."""

    def __init__(self, scenario: Scenario, *, node_port: int = 0, metadata_port: int = 0) -> None:
        self._scenario = scenario
        self._node_port = node_port
        self._metadata_port = metadata_port
        self.node: LoopbackServer | None = None
        # The metadata host on 127.0.0.1, the one `metadata_url` points at.
        self.metadata_host: LoopbackServer | None = None
        self._metadata_servers: dict[str, LoopbackServer] = {}
        self._apps: tuple[NodeRpc | MetadataHost, ...] = ()

    def start(self) -> Devnet:
        """Bind every port (the metadata hosts first: the node's URIs point at them) and serve;
        if any bind fails, the ports already bound are released."""
        bound = self._bind_metadata_servers()
        servers = {server.address: server for _, server in bound}
        host = servers[LOOPBACK]
        try:
            rpc = NodeRpc(self._scenario, metadata_url=host.url)
            node = LoopbackServer(rpc, self._node_port)
        except OSError:
            _close(servers.values())
            raise
        for server in (*servers.values(), node):
            server.start()
        self.metadata_host, self.node, self._metadata_servers = host, node, servers
        self._apps = (rpc, *(documents for documents, _ in bound))
        return self

    def _bind_metadata_servers(self) -> list[tuple[MetadataHost, LoopbackServer]]:
        """One metadata host and its bound (not yet serving) server per metadata address,
        127.0.0.1 first."""
        retries = _PORT_ATTEMPTS - 1 if self._metadata_port == 0 else 0
        for _ in range(retries):
            try:
                return self._bind_metadata_servers_once()
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
        return self._bind_metadata_servers_once()

    def _bind_metadata_servers_once(self) -> list[tuple[MetadataHost, LoopbackServer]]:
        bound: list[tuple[MetadataHost, LoopbackServer]] = []
        port = self._metadata_port
        try:
            for address in self._scenario.metadata_addresses():
                documents = MetadataHost(self._scenario, address=address)
                server = LoopbackServer(documents, port, address=address)
                bound.append((documents, server))
                port = server.server_port
        except OSError:
            _close(server for _, server in bound)
            raise
        return bound

    def stop(self) -> None:
        """Stop the node and every metadata host."""
        for server in (self.node, *self._metadata_servers.values()):
            if server is not None:
                server.stop()
        self.node = self.metadata_host = None
        self._metadata_servers, self._apps = {}, ()

    @property
    def node_url(self) -> str:
        return self._running()[0].url

    @property
    def metadata_url(self) -> str:
        """What `{metadata}` in token URI templates resolves to (the 127.0.0.1 host; contracts
        with a `metadata_host` get theirs through `Contract.resolved_token_uri`)."""
        return self._running()[1].url

    @property
    def metadata_servers(self) -> dict[str, LoopbackServer]:
        """The running metadata hosts by loopback address, 127.0.0.1 first (empty when
        stopped)."""
        return dict(self._metadata_servers)

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        """Swap what every server answers, e.g. after a test grew the chain. Metadata hosts are
        bound at start: while running, a contract on an address no server listens on is
        refused (list that address in `metadata_hosts` before starting)."""
        self._check_served(scenario)
        self._scenario = scenario
        for app in self._apps:
            app.scenario = scenario

    def deploy(self, *contracts: Contract) -> None:
        """Make the node and metadata hosts know about newly deployed contracts; raises
        ValueError, changing nothing, for a contract whose metadata address is not served."""
        self.scenario = self._scenario.with_contracts(*contracts)

    def _check_served(self, scenario: Scenario) -> None:
        if not self._metadata_servers:
            return
        missing = set(scenario.metadata_addresses()) - set(self._metadata_servers)
        if missing:
            raise ValueError(
                f"no metadata host runs on {', '.join(sorted(missing))}: hosts are bound when "
                "the Devnet starts, so list these addresses in the scenario's metadata_hosts"
            )

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


def _close(servers: Iterable[LoopbackServer]) -> None:
    """Release the ports of servers that were bound but never started."""
    for server in servers:
        server.server_close()
