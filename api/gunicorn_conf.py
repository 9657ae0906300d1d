"""gunicorn settings of the `api` process (`--config api/gunicorn_conf.py`, loaded by path).

Request metrics are kept per worker process in PROMETHEUS_MULTIPROC_DIR, so that `/metrics`
adds up every worker; the directory is emptied at start and a dead worker's gauges dropped.
prometheus_client must not be imported in the master before the variable is set: it picks its
storage at import time and the workers inherit the master's modules. That is why gunicorn loads
this file by path: as `python:api.gunicorn_conf` it would import the `api` package first.
Log lines (gunicorn's and the app's) follow LOG_FORMAT through `ServiceLogger`; the shared
modules it imports stay clear of prometheus_client.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from shared.config import load_settings
from shared.logs import configure_logging, make_formatter

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_created: list[str] = []


def on_starting(server: Any) -> None:
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        directory = tempfile.mkdtemp(prefix="token-metadata-api-metrics-")
        _created.append(directory)
        os.environ[MULTIPROCESS_ENV] = directory


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    for directory in _created:
        shutil.rmtree(directory, ignore_errors=True)


class ServiceLogger(Logger):
    """gunicorn's logger; the app's loggers go through one root handler, and with LOG_FORMAT=json
    gunicorn's error and access lines are JSON too (written where gunicorn's options say)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        settings = load_settings()
        configure_logging(settings, level=cfg.loglevel)
        if settings.log_format == "json":
            for handler in (*self.error_log.handlers, *self.access_log.handlers):
                handler.setFormatter(make_formatter("json"))


logger_class = ServiceLogger
