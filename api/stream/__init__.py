"""The live stream of the change log, `GET /metadata/v1/changes/stream` (Server-Sent Events),
served by the Procfile's `stream` process on aiohttp (docs/change-feed.md#stream).

`python -m api.stream` runs it; `app.make_app` builds the aiohttp application, `feed.Feed`
reads the log once for every subscriber and hands each the entries it asked for, and `sse`
formats the events.
"""
