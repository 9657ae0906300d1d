"""Log lines as text or JSON (LOG_FORMAT), carrying the ids of the job being worked on.

`log_context(job_id=..., token_id=...)` puts ids in a context variable for the block it wraps
(per thread: the worker runs one job per thread); a filter copies them onto every record
written meanwhile, and both formatters print them. With LOG_FORMAT=json each line is one JSON
object (`time`, `level`, `logger`, `message`, the ids, `exception`), for a log pipeline to index.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

from shared.config import Settings
from shared.queues import (
    DISPATCH_JOBS_TASK,
    DISPATCH_WEBHOOKS_TASK,
    MONITOR_CHAIN_TASK,
    PRUNE_CHANGES_TASK,
)

# None outside any `log_context` block; a fresh dict inside one (never mutated in place).
_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)

TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Add `ids` (those not None) to every log line written inside the block."""
    token = _context.set({**(_context.get() or {}), **_known(ids)})
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**ids: Any) -> None:
    """Add ids learnt midway (a claimed job's token) until the enclosing `log_context` ends;
    outside any block it does nothing, so ids never outlive their job."""
    current = _context.get()
    if current is not None:
        _context.set({**current, **_known(ids)})


def current_log_context() -> dict[str, Any]:
    return dict(_context.get() or {})


def _known(ids: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in ids.items() if value is not None}


class ContextFilter(logging.Filter):
    """Copies the current `log_context` ids onto the record (as `record.log_context`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "log_context"):
            record.__dict__["log_context"] = current_log_context()
        return True


def _record_ids(record: logging.LogRecord) -> dict[str, Any]:
    ids = getattr(record, "log_context", None)
    return dict(ids) if isinstance(ids, Mapping) else current_log_context()


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the time is UTC ISO 8601 with milliseconds."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _record_ids(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, followed by the context's ids as `key=value` pairs."""

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _record_ids(record)
        if not ids:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the ids
        pairs = " ".join(f"{key}={value}" for key, value in ids.items())
        return f"{first} [{pairs}]{newline}{rest}"


# Beat's housekeeping tasks run every 0.5-2 s: at INFO, Celery's "sending", "received" and
# "succeeded" lines for them would be most of a quiet service's log. Their failures still show,
# and LOG_LEVEL=DEBUG shows every line.
HOUSEKEEPING_TASKS = (
    DISPATCH_JOBS_TASK,
    DISPATCH_WEBHOOKS_TASK,
    MONITOR_CHAIN_TASK,
    PRUNE_CHANGES_TASK,
)


class HousekeepingNoiseFilter(logging.Filter):
    """Drops Celery's INFO lines about the housekeeping tasks' routine runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("celery."):
            return True
        message = record.getMessage()
        return not any(task in message for task in HOUSEKEEPING_TASKS)


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


class _ServiceHandler(logging.StreamHandler[IO[str]]):
    """The handler `configure_logging` installs; found again and replaced on a second call."""


def configure_logging(
    settings: Settings, level: int | str | None = None, stream: IO[str] | None = None
) -> logging.Handler:
    """Route every logger through one stderr handler formatted per LOG_FORMAT (idempotent)."""
    handler = _ServiceHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(settings.log_format))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level.upper() if isinstance(level, str) else level)
    if root.getEffectiveLevel() > logging.DEBUG:
        handler.addFilter(HousekeepingNoiseFilter())
    return handler


def _utc_iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
