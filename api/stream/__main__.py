"""The `stream` process: `python -m api.stream` serves the change stream on STREAM_HOST and
STREAM_PORT with aiohttp (docs/change-feed.md#stream). SIGTERM and SIGINT end the streams
(clients resume with Last-Event-ID) and stop it."""

from __future__ import annotations

import logging

from aiohttp import web

from api.stream.app import make_app
from shared.config import load_settings
from shared.logs import configure_logging

# Connections waiting to be accepted: subscribers come back all at once after a restart.
BACKLOG = 2048
# Streams never finish by themselves: on shutdown they are ended, not waited for.
SHUTDOWN_TIMEOUT_S = 2.0


def main() -> None:
    settings = load_settings()
    configure_logging(settings, settings.log_level)
    logging.getLogger(__name__).info(
        "stream: listening on %s:%d", settings.stream_host, settings.stream_port
    )
    web.run_app(
        make_app(settings),
        host=settings.stream_host,
        port=settings.stream_port,
        backlog=BACKLOG,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        handler_cancellation=True,  # a client that leaves ends its coroutine at once
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
