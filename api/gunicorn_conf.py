"""gunicorn settings of the `api` process (`--config api/gunicorn_conf.py`, loaded by path).

Request metrics are kept per worker process in PROMETHEUS_MULTIPROC_DIR, so that `/metrics`
adds up every worker; the directory is emptied at start and a dead worker's gauges dropped.
prometheus_client must not be imported in the master before the variable is set: it picks its
storage at import time and the workers inherit the master's modules. That is why gunicorn loads
this file by path: as `python:api.gunicorn_conf` it would import the `api` package first.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

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
