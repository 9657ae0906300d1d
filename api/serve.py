"""The `api` process: `python -m api.serve [module:app]` serves the API with granian.

Why granian: the HTTP work (parsing, keep-alive, writing) runs in Rust, outside the GIL, so the
Python threads only run the app. On the 2-core benchmark machine the same app and settings
answered 2.1-3.4x the requests/s of gunicorn's threaded workers, with a lower p99
(docs/api-server.md has the figures and what else was measured).

Settings (all read by `shared.config`): API_HOST, API_PORT, API_WORKERS processes of
API_THREADS request threads each, API_ACCESS_LOG ("-": standard output, "off", or a file),
LOG_FORMAT and LOG_LEVEL. Workers that die are started again.

Request metrics are kept per worker process in PROMETHEUS_MULTIPROC_DIR so that `/metrics`
adds up every worker. prometheus_client picks its storage when it is first imported, so this
module prepares the directory before the app (and with it prometheus_client) is loaded in the
workers; that is why the `api` package imports nothing itself.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.config import Settings, load_settings

APP = "api.wsgi:app"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# gunicorn's common format, as far as granian knows the fields, plus the time taken; the
# target is the path and its query string (`RequestTarget`).
ACCESS_LOG_FORMAT = (
    '%(addr)s - - [%(time)s] "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'
)


class RequestTarget(logging.Filter):
    """Puts the query string back on the path of an access line, as the request had it."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.args
        if isinstance(fields, dict) and fields.get("query_string"):
            record.args = {**fields, "path": f"{fields['path']}?{fields['query_string']}"}
        return True


# On SIGTERM, requests in progress get this long before a worker is killed. A worker still
# loading the app when the signal comes does not see it and is killed after this long.
WORKER_KILL_TIMEOUT_S = 10


def log_config(settings: Settings) -> dict[str, Any]:
    """logging's dictConfig for granian's master and workers: the app's loggers and granian's
    own lines go to standard error per LOG_FORMAT, access lines where API_ACCESS_LOG says."""
    formatter = {"()": "shared.logs.make_formatter", "log_format": settings.log_format}
    handlers: dict[str, Any] = {
        "service": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "service",
            "filters": ["log_context"],
        }
    }
    access = settings.api_access_log
    if access == "-":
        handlers["access"] = {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "service",
            "filters": ["request_target"],
        }
    elif access != "off":
        handlers["access"] = {
            "class": "logging.FileHandler",
            "filename": access,
            "formatter": "service",
            "filters": ["request_target"],
        }
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "log_context": {"()": "shared.logs.ContextFilter"},
            "request_target": {"()": "api.serve.RequestTarget"},
        },
        "formatters": {"service": formatter},
        "handlers": handlers,
        "root": {"handlers": ["service"], "level": level},
        "loggers": {
            "_granian": {"handlers": ["service"], "level": level, "propagate": False},
            "granian.access": {
                "handlers": ["access"] if "access" in handlers else [],
                "level": "INFO",
                "propagate": False,
            },
        },
    }


def server_options(settings: Settings, target: str = APP) -> dict[str, Any]:
    """The keyword arguments of `granian.Granian` for these settings."""
    from granian.constants import HTTPModes, Interfaces

    return {
        "target": target,
        "address": settings.api_host,
        "port": settings.api_port,
        "interface": Interfaces.WSGI,
        "http": HTTPModes.http1,
        "websockets": False,
        "workers": settings.api_workers,
        "blocking_threads": settings.api_threads,
        "log_dictconfig": log_config(settings),
        "log_access": settings.api_access_log != "off",
        "log_access_format": ACCESS_LOG_FORMAT,
        "respawn_failed_workers": True,
        "workers_kill_timeout": WORKER_KILL_TIMEOUT_S,
    }


@contextmanager
def metrics_directory() -> Iterator[Path]:
    """PROMETHEUS_MULTIPROC_DIR, emptied of an earlier run's files; a temporary one (removed
    at exit) when the variable is not set. The workers inherit the variable."""
    configured = os.environ.get(MULTIPROCESS_ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="token-metadata-api-metrics-"))
    os.environ[MULTIPROCESS_ENV] = str(directory)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    target = args[0] if args else APP
    settings = load_settings()
    from granian import Granian

    with metrics_directory():
        Granian(**server_options(settings, target)).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
