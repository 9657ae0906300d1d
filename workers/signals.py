"""Worker lifecycle hooks: refuse to start without a chain to read; logging as LOG_FORMAT
says (beat too); the worker's Prometheus exporter and task metrics (workers/metrics.py);
beat checks the chain as soon as it starts."""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import current_app
from celery.signals import beat_init, setup_logging, task_postrun, task_prerun, worker_init

from shared.config import Settings
from shared.logs import configure_logging
from shared.queues import MONITOR_CHAIN_TASK
from workers import metrics


@worker_init.connect
def check_chain_settings(sender: Any = None, **_kwargs: Any) -> None:
    settings: Settings = sender.app.conf.token_metadata_settings
    for variable, value in (
        ("STACKS_NODE_RPC_URL", settings.stacks_node_rpc_url),
        ("STACKS_API_DATABASE_URL", settings.stacks_api_database_url),
    ):
        if not value:
            print(
                f"configuration error: {variable} is not set "
                "(`make run` starts a simulated network when no node is configured)",
                file=sys.stderr,
            )
            raise SystemExit(2)


@worker_init.connect
def serve_worker_metrics(sender: Any = None, **_kwargs: Any) -> None:
    settings: Settings = sender.app.conf.token_metadata_settings
    if settings.log_format == "json":
        sender.quiet = True  # no start banner: every line of stdout is a JSON object
    metrics.start_exporter(settings)


@beat_init.connect
def follow_the_chain_at_once(sender: Any = None, **_kwargs: Any) -> None:
    """Beat's first chain check would come one CHAIN_POLL_INTERVAL_S after it starts; a
    fresh deployment starts importing the chain's contracts now instead."""
    settings: Settings = sender.app.conf.token_metadata_settings
    sender.app.send_task(MONITOR_CHAIN_TASK, expires=settings.chain_poll_interval_s)


@setup_logging.connect
def configure_worker_logging(loglevel: Any = None, **_kwargs: Any) -> None:
    """Replaces Celery's own setup, so its lines (and Python's warnings) are formatted like
    ours: JSON or text."""
    configure_logging(current_app.conf.token_metadata_settings, level=loglevel)
    logging.captureWarnings(True)


task_prerun.connect(metrics.task_started)
task_postrun.connect(metrics.task_finished)
