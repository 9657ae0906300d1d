"""The change stream under test: its aiohttp app on a loopback port in a thread of its own, and
a Server-Sent Events reader over `requests` (docs/change-feed.md#stream)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from aiohttp import web

from api.stream.app import FEED, make_app
from api.stream.feed import Feed
from shared.config import Settings

READ_TIMEOUT_S = 10.0  # the longest a test waits for the next bytes of a stream


@dataclass
class StreamServer:
    base: str
    app: web.Application

    @property
    def feed(self) -> Feed:
        return self.app[FEED]

    def url(self, path: str = "/metadata/v1/changes/stream") -> str:
        return self.base + path


@contextmanager
def stream_server(settings: Settings) -> Iterator[StreamServer]:
    """The stream's app serving on 127.0.0.1 (a free port) until the block ends."""
    app = make_app(settings)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=2.0)
    started = threading.Event()
    port: list[int] = []
    failed: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port.append(runner.addresses[0][1])
        except BaseException as exc:
            failed.append(exc)
            return
        finally:
            started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, name="stream-server", daemon=True)
    thread.start()
    started.wait(30)
    if failed:
        raise failed[0]
    try:
        yield StreamServer(f"http://127.0.0.1:{port[0]}", app)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if thread.is_alive():
            for task in asyncio.all_tasks(loop):  # what the shutdown waits for
                task.print_stack()
        loop.close()


@dataclass
class Event:
    id: int
    data: dict[str, Any]


@dataclass
class EventStream:
    """One subscriber: reads blocks (an event, a comment) as they come."""

    response: requests.Response
    comments: list[str] = field(default_factory=list)
    _buffer: bytes = b""

    def __post_init__(self) -> None:
        self._chunks = self.response.iter_content(chunk_size=None)

    def block(self) -> list[str]:
        """The next block's lines (a read timeout fails the test)."""
        while b"\n\n" not in self._buffer:
            self._buffer += next(self._chunks)
        block, self._buffer = self._buffer.split(b"\n\n", 1)
        return block.decode().split("\n")

    def events(self, count: int) -> list[Event]:
        """The next `count` events; comments met on the way are kept in `comments`."""
        found: list[Event] = []
        while len(found) < count:
            lines = self.block()
            if all(line.startswith(":") for line in lines):
                self.comments += lines
                continue
            fields = dict(line.split(": ", 1) for line in lines)
            found.append(Event(int(fields["id"]), orjson.loads(fields["data"])))
        return found

    def comment(self) -> str:
        """The next comment line, skipping no event (fails if an event comes first)."""
        lines = self.block()
        assert all(line.startswith(":") for line in lines), lines
        return lines[0]

    def close(self) -> None:
        self.response.close()


@contextmanager
def subscribed(
    url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
) -> Iterator[EventStream]:
    """An open stream whose opening comment was read: it is following from then on."""
    response = requests.get(
        url, params=params, headers=headers, stream=True, timeout=(5, READ_TIMEOUT_S)
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = EventStream(response)
    try:
        assert stream.comment().startswith(": after ")
        yield stream
    finally:
        stream.close()
