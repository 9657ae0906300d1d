"""A scripted HTTP server on 127.0.0.1 (or another loopback address, to stand for another
host) for metadata-host behaviours tests need."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drip_s: float = 0.0  # > 0: the body goes out one byte at a time, this far apart


@dataclass
class Posted:
    """One POST the server received, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class ScriptedServer:
    """`with ScriptedServer() as host: host.route("/a.json", Reply(...)); host.url + "/a.json"`.

    POSTs (a webhook receiver) are answered by `script(path, [replies])`, one reply per
    request and the last one for every request after; each is kept in `posts`."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.routes: dict[str, Reply] = {}
        self.scripts: dict[str, list[Reply]] = {}
        self.posts: list[Posted] = []
        self.hits: Counter[str] = Counter()
        self.headers: dict[str, dict[str, str]] = {}  # last request headers by path
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with server._lock:
                    server.hits[self.path] += 1
                    server.headers[self.path] = dict(self.headers.items())
                # A route with a query string answers that query only; one without, any.
                reply = server.routes.get(self.path) or server.routes.get(
                    self.path.split("?", 1)[0], Reply(404, b"not found")
                )
                self.answer(reply)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.hits[self.path] += 1
                    script = server.scripts.get(path) or [Reply(404, b"not found")]
                    reply = script.pop(0) if len(script) > 1 else script[0]
                    server.posts.append(
                        Posted(path, dict(self.headers.items()), body, reply.status)
                    )
                self.answer(reply)

            def answer(self, reply: Reply) -> None:
                if reply.delay_s:
                    time.sleep(reply.delay_s)  # the simulated host is slow on purpose
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if not reply.drip_s:
                        self.wfile.write(reply.body)
                    for index in range(len(reply.body) if reply.drip_s else 0):
                        time.sleep(reply.drip_s)  # the simulated host drips on purpose
                        self.wfile.write(reply.body[index : index + 1])
                        self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{address}:{self.server.server_port}"

    def script(self, path: str, replies: list[Reply]) -> str:
        """Answer POSTs to `path` with these replies in turn, then the last one."""
        with self._lock:
            self.scripts[path] = list(replies)
        return self.url + path

    def route(self, path: str, reply: Reply) -> str:
        self.routes[path] = reply
        return self.url + path

    def __enter__(self) -> ScriptedServer:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
