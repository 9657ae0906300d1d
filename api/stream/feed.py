"""The stream process's one reader of the change log, and its subscribers.

One LISTEN connection is woken by the notification every commit that writes entries sends
(`shared.changes.NOTIFY_CHANNEL`). The reader then reads what follows the last id it read, with
GET /changes's own statement, once for every subscriber, and hands each entry to the
subscribers whose filters it matches. It also reads every `poll_s` seconds when nothing woke
it: a notification lost while the LISTEN connection was down loses no entry, only time.
LISTEN needs a connection that keeps its session: with DATABASE_URL through a transaction-mode
pooler and no DATABASE_SESSION_URL the feed does not listen and reads every `poll_s` seconds
(docs/replicas-and-poolers.md#poolers).

A subscriber resuming from an older id first pages through the log on its own (`follow`),
then joins the fan-out at the id it reached; from then on it is handed only entries above its
own last id, so nothing comes twice and, ids being committed in order
(docs/change-feed.md#ordering), nothing is skipped. An idle subscriber holds no database
connection: a few small objects and its coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool

from api.stream.sse import EVERYTHING, Filters, event
from shared.changes import NOTIFY_CHANNEL
from shared.pooling import connection_options
from shared.reads.changes import (
    LATEST_ID_SQL,
    MAX_LIMIT,
    ChangesPage,
    ChangesPruned,
    changes_answer,
    changes_statement,
)

log = logging.getLogger(__name__)

# Connections of the pool: the reader and subscribers catching up; idle subscribers use none.
POOL_SIZE = 4
# Events waiting for a subscriber that does not read them; past this it is disconnected and
# resumes with Last-Event-ID when it comes back.
MAX_PENDING = 10_000
RECONNECT_S = 1.0
APPLICATION_NAME = "tm-stream"


class Subscriber:
    """One open stream: its filters, the last id it was handed or passed over, and the events
    waiting to be written to it."""

    __slots__ = ("cursor", "dropped", "filters", "pending", "ready")

    def __init__(self, filters: Filters, cursor: int) -> None:
        self.filters = filters
        self.cursor = cursor
        self.pending: list[bytes] = []
        self.ready = asyncio.Event()
        self.dropped = False

    def push(self, frame: bytes) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.drop()
            return
        self.pending.append(frame)
        self.ready.set()

    def drop(self) -> None:
        """End the stream: the handler writes nothing more and closes it."""
        self.dropped = True
        self.pending = []
        self.ready.set()

    async def next_events(self, timeout: float) -> list[bytes]:
        """The events waiting, as soon as there are some; [] after `timeout` seconds without."""
        if not self.pending and not self.dropped:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.ready.wait()
        self.ready.clear()
        events, self.pending = self.pending, []
        return events


class Feed:
    """The reader, its LISTEN connection, the pool, and the subscribers of the fan-out."""

    def __init__(
        self,
        conninfo: str,
        poll_s: float,
        listen_conninfo: str | None = None,
        transaction_pooled: bool = False,
    ) -> None:
        """`conninfo` serves the reads; `listen_conninfo` (a connection that keeps its
        session) the LISTEN, None for none: the reader then only polls."""
        self.conninfo = conninfo
        self.listen_conninfo = listen_conninfo
        self.poll_s = poll_s
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            kwargs={
                "autocommit": True,
                "application_name": APPLICATION_NAME,
                **connection_options(transaction_pooled),
            },
        )
        self.position = 0  # the last id the reader read
        self.subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the pool, start from the latest id, then listen and read."""
        await self.pool.open(wait=True)
        self.position = await self.latest_id()
        self._tasks = [asyncio.create_task(self._read_loop(), name="stream-read")]
        if self.listen_conninfo is None:
            log.info("stream: no session connection to LISTEN on; reading every %ss", self.poll_s)
        else:
            self._tasks.append(asyncio.create_task(self._listen(), name="stream-listen"))

    async def stop(self) -> None:
        self.drop_all()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pool.close()

    def drop_all(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.drop()
        self.subscribers.clear()

    async def latest_id(self) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(LATEST_ID_SQL)
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0

    async def read(
        self, after: int, filters: Filters = EVERYTHING, limit: int = MAX_LIMIT
    ) -> ChangesPage | ChangesPruned:
        """GET /changes's page, from its own statement and encoding."""
        sql, params = changes_statement(
            after,
            limit,
            sorted(filters.contracts) if filters.contracts else None,
            sorted(filters.kinds) if filters.kinds else None,
        )
        async with self.pool.connection() as conn:
            cursor = conn.cursor(row_factory=namedtuple_row)
            await cursor.execute(sql, params)
            rows: list[Any] = await cursor.fetchall()
        return changes_answer(rows, after, limit)

    async def follow(
        self,
        filters: Filters,
        page: ChangesPage,
        send: Callable[[list[dict[str, Any]]], Awaitable[None]],
    ) -> Subscriber:
        """Send `page` and the pages after it until the reader's position is reached, then
        join the fan-out there. Raises `Behind` if the log was pruned past the subscriber
        while it caught up."""
        while True:
            if page.results:
                await send(page.results)
            cursor = page.next_after
            # No await between this check and the join: the reader cannot move in between.
            if len(page.results) < MAX_LIMIT and cursor >= self.position:
                subscriber = Subscriber(filters, cursor)
                self.subscribers.add(subscriber)
                return subscriber
            following = await self.read(cursor, filters)
            if isinstance(following, ChangesPruned):
                raise Behind(following)
            page = following

    def leave(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        """Wake the reader at every notification; after a reconnection too, for what was
        written while the connection was down."""
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.listen_conninfo or self.conninfo,
                    autocommit=True,
                    application_name=APPLICATION_NAME,
                )
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.wake()
                    async for _ in conn.notifies():
                        self.wake()
            except psycopg.Error as exc:
                log.warning("stream: LISTEN connection lost (%s); reconnecting", exc)
                await asyncio.sleep(RECONNECT_S)

    async def _read_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.read_new()
            except psycopg.Error as exc:
                log.warning("stream: reading the change log failed (%s)", exc)

    async def read_new(self) -> None:
        """Read every entry after the position and hand each to the subscribers it is for."""
        while True:
            page = await self.read(self.position)
            if isinstance(page, ChangesPruned):  # this process was stopped for days
                log.warning("stream: the log was pruned past %d; subscribers resume", self.position)
                self.drop_all()
                self.position = page.latest_id
                return
            for entry in page.results:
                self._fan_out(entry)
            self.position = max(self.position, page.next_after)
            if len(page.results) < MAX_LIMIT:
                return

    def _fan_out(self, entry: dict[str, Any]) -> None:
        entry_id: int = entry["id"]
        frame: bytes | None = None
        for subscriber in self.subscribers:
            if entry_id <= subscriber.cursor:
                continue  # it read this one while catching up
            subscriber.cursor = entry_id
            if subscriber.filters.matches(entry):
                if frame is None:
                    frame = event(entry)
                subscriber.push(frame)


class Behind(Exception):
    """The log was pruned past a subscriber's position."""

    def __init__(self, pruned: ChangesPruned) -> None:
        super().__init__(f"pruned through {pruned.pruned_through}")
        self.pruned = pruned
