"""The stream process's aiohttp application: `GET /changes/stream` under `/metadata/v1` and
`/metadata`, `/metrics` and `/healthz` (docs/change-feed.md#stream).

The parameters are GET /changes's (`after`, repeatable `contract` and `kind`), validated by its
schema, with its 400 and 410 bodies, answered before the stream starts. `Last-Event-ID`, which
an EventSource sends when it reconnects, takes the place of `after`. Without either the stream
starts at the latest entry: only what is written after connecting.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from marshmallow import EXCLUDE, ValidationError, fields
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from api.schemas.changes import ChangesQuerySchema, pruned_body
from api.schemas.messages import validation_message
from api.stream.feed import Behind, Feed
from api.stream.sse import HEARTBEAT, Filters, event
from shared.config import Settings
from shared.reads.changes import ChangesPruned

PATHS = ("/metadata/v1/changes/stream", "/metadata/changes/stream")
LAST_EVENT_ID = "Last-Event-ID"
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # a buffering proxy (nginx) passes events on at once
    "Access-Control-Allow-Origin": "*",
}
_QUERY = ChangesQuerySchema(exclude=("limit",), unknown=EXCLUDE)


@dataclass(frozen=True)
class StreamMetrics:
    """The process's own registry: several apps in one test process do not share counts."""

    registry: CollectorRegistry
    subscribers: Gauge
    events: Counter

    @classmethod
    def create(cls) -> StreamMetrics:
        registry = CollectorRegistry()
        subscribers = Gauge(
            "token_metadata_stream_subscribers", "Open change streams", registry=registry
        )
        events = Counter(
            "token_metadata_stream_events", "Change events sent to subscribers", registry=registry
        )
        return cls(registry, subscribers, events)


FEED = web.AppKey("feed", Feed)
METRICS = web.AppKey("metrics", StreamMetrics)
HEARTBEAT_S = web.AppKey("heartbeat_s", float)


def make_app(settings: Settings) -> web.Application:
    app = web.Application()
    session_url = settings.session_url()
    app[FEED] = Feed(
        libpq_url(settings.database_url),
        settings.stream_poll_s,
        listen_conninfo=None if session_url is None else libpq_url(session_url),
        transaction_pooled=settings.transaction_pooled,
    )
    app[METRICS] = StreamMetrics.create()
    app[HEARTBEAT_S] = settings.stream_heartbeat_s
    for path in PATHS:
        app.router.add_get(path, stream)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", health)
    app.on_startup.append(_start)
    app.on_shutdown.append(_end_streams)
    app.on_cleanup.append(_stop)
    return app


def libpq_url(database_url: str) -> str:
    """DATABASE_URL (SQLAlchemy's `postgresql+psycopg://`) as libpq takes it."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


class BadParameter(Exception):
    """A malformed parameter; `message` is GET /changes's 400 message for it."""

    def __init__(self, messages: dict[str, Any]) -> None:
        self.message = validation_message(messages)
        super().__init__(self.message)


def stream_parameters(request: web.Request) -> tuple[int | None, Filters]:
    """`after` (Last-Event-ID first; None when neither is given) and the filters."""
    raw: dict[str, Any] = {}
    for name, field in _QUERY.fields.items():
        values = request.query.getall(name, [])
        if values:
            raw[name] = values if isinstance(field, fields.List) else values[0]
    try:
        args = _QUERY.load(raw)
    except ValidationError as exc:
        raise BadParameter({"query": exc.messages}) from None
    after: int | None = args["after"] if "after" in raw else None
    last_event_id = request.headers.get(LAST_EVENT_ID, "").strip()
    if last_event_id:
        try:
            after = _QUERY.load({"after": last_event_id})["after"]
        except ValidationError as exc:
            errors = exc.messages["after"] if isinstance(exc.messages, dict) else exc.messages
            raise BadParameter({"headers": {LAST_EVENT_ID: errors}}) from None
    return after, Filters.of(args.get("contract"), args.get("kind"))


async def stream(request: web.Request) -> web.StreamResponse:
    """One subscriber: its catch-up, then the live entries and a heartbeat when idle."""
    feed, counts = request.app[FEED], request.app[METRICS]
    try:
        after, filters = stream_parameters(request)
    except BadParameter as exc:
        return _json(_bad_request(exc.message), 400)
    if after is None:
        after = await feed.latest_id()
    first = await feed.read(after, filters)
    if isinstance(first, ChangesPruned):
        return _json(pruned_body(first), 410)
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    counts.subscribers.inc()
    subscriber = None

    async def send(entries: list[dict[str, Any]]) -> None:
        await response.write(b"".join(event(entry) for entry in entries))
        counts.events.inc(len(entries))

    try:
        await response.write(b": after %d\n\n" % after)  # sends the headers at once
        subscriber = await feed.follow(filters, first, send)
        heartbeat_s = request.app[HEARTBEAT_S]
        while not subscriber.dropped:
            events = await subscriber.next_events(heartbeat_s)
            if subscriber.dropped:
                break
            await response.write(b"".join(events) if events else HEARTBEAT)
            counts.events.inc(len(events))
    except (ConnectionResetError, Behind):
        pass  # the client left, or must resume (and gets the 410 when it does)
    finally:
        if subscriber is not None:
            feed.leave(subscriber)
        counts.subscribers.dec()
    return response


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def health(request: web.Request) -> web.Response:
    feed = request.app[FEED]
    return _json({"status": "ok", "position": feed.position, "subscribers": len(feed.subscribers)})


def _bad_request(message: str) -> dict[str, Any]:
    return {
        "statusCode": 400,
        "code": "FST_ERR_VALIDATION",
        "error": "Bad Request",
        "message": message,
    }


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Access-Control-Allow-Origin": "*"},
    )


async def _start(app: web.Application) -> None:
    await app[FEED].start()


async def _end_streams(app: web.Application) -> None:
    """On shutdown the streams end at once; their clients resume elsewhere."""
    app[FEED].drop_all()
    await asyncio.sleep(0)


async def _stop(app: web.Application) -> None:
    await app[FEED].stop()
