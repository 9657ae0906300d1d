"""Log lines: text or one JSON object per line, carrying the ids of the job being worked on."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from shared.config import Settings
from shared.logs import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    bind_log_context,
    configure_logging,
    current_log_context,
    log_context,
)


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("shared.test", logging.INFO, __file__, 1, message, args or None, None)
    made.__dict__.update(extra)
    ContextFilter().filter(made)
    return made


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of our own whose lines go through `configure_logging`'s handler."""
    stream = io.StringIO()
    handler = configure_logging(replace(Settings(), log_format="json"), stream=stream)
    root = logging.getLogger()
    root.removeHandler(handler)  # keep pytest's root logger as it was
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_json_line_has_time_level_logger_message_and_the_context_ids() -> None:
    with log_context(job_id=12, token_id=7):
        line = JsonFormatter().format(record("job %s ended %s", 12, "done"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "shared.test"
    assert entry["message"] == "job 12 ended done"
    assert entry["job_id"] == 12
    assert entry["token_id"] == 7
    assert entry["time"].endswith("Z")
    assert datetime.fromisoformat(entry["time"]).utcoffset() == timedelta(0)


def test_json_exception_stays_on_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(made)
    assert len(line.splitlines()) == 1
    assert "ValueError: bad\\nvalue" in line
    assert "Traceback" in json.loads(line)["exception"]


def test_json_survives_values_json_cannot_encode() -> None:
    with log_context(contract=object()):
        entry = json.loads(JsonFormatter().format(record()))
    assert entry["contract"].startswith("<object object")


def test_text_line_ends_with_the_ids_as_pairs() -> None:
    with log_context(job_id=5, contract="SP1.nft"):
        line = TextFormatter().format(record("fetched %s", "x"))
    assert line.endswith("shared.test: fetched x [job_id=5 contract=SP1.nft]")


def test_text_line_without_context_is_unchanged() -> None:
    assert TextFormatter().format(record("plain")).endswith("shared.test: plain")


def test_context_ends_with_its_block_and_nests() -> None:
    with log_context(job_id=1):
        with log_context(token_id=2):
            assert current_log_context() == {"job_id": 1, "token_id": 2}
        assert current_log_context() == {"job_id": 1}
    assert current_log_context() == {}


def test_none_ids_are_left_out() -> None:
    with log_context(job_id=3, token_id=None):
        assert current_log_context() == {"job_id": 3}


def test_bound_ids_last_until_the_enclosing_block_ends() -> None:
    with log_context(job_id=1):
        bind_log_context(token_id=9, contract_id=None)
        assert current_log_context() == {"job_id": 1, "token_id": 9}
    assert current_log_context() == {}


def test_binding_outside_any_block_does_nothing() -> None:
    bind_log_context(token_id=9)
    assert current_log_context() == {}


def test_each_thread_has_its_own_context() -> None:
    seen: dict[str, dict[str, object]] = {}
    inside, done = threading.Event(), threading.Event()

    def other_job() -> None:
        with log_context(job_id=2):
            inside.set()
            done.wait(5)
            seen["other"] = current_log_context()

    thread = threading.Thread(target=other_job)
    with log_context(job_id=1):
        thread.start()
        assert inside.wait(5)
        seen["main"] = current_log_context()
        done.set()
        thread.join(5)
    assert seen == {"main": {"job_id": 1}, "other": {"job_id": 2}}


def test_configured_handler_writes_json_lines_with_ids(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with log_context(job_id=42):
        logger.info("claimed")
    logger.warning("after")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["message"], first["job_id"]) == ("claimed", 42)
    assert second["level"] == "WARNING"
    assert "job_id" not in second


def test_configure_logging_replaces_its_own_handler_only() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        first = configure_logging(Settings(), stream=io.StringIO())
        second = configure_logging(Settings(), level="warning", stream=io.StringIO())
        assert first not in root.handlers
        assert second in root.handlers
        assert all(handler in root.handlers for handler in before)
        assert root.level == logging.WARNING
        assert isinstance(second.formatter, TextFormatter)
    finally:
        root.removeHandler(second)
        root.setLevel(level)


def celery_line(logger_name: str, level: int, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(logger_name, level, __file__, 1, message, args or None, None)


def handler_at(level: str) -> logging.Handler:
    root = logging.getLogger()
    before = root.level
    handler = configure_logging(Settings(), level=level, stream=io.StringIO())
    root.removeHandler(handler)
    root.setLevel(before)
    return handler


def test_routine_runs_of_housekeeping_tasks_are_not_logged_at_info() -> None:
    handler = handler_at("info")
    quiet = [
        celery_line(
            "celery.beat",
            logging.INFO,
            "Scheduler: Sending due task %s (%s)",
            "dispatch-webhooks",
            "token_metadata.dispatch_webhooks",
        ),
        celery_line(
            "celery.worker.strategy",
            logging.INFO,
            "Task %(name)s[%(id)s] received",
            {"name": "token_metadata.dispatch_jobs", "id": "a"},
        ),
        celery_line(
            "celery.app.trace",
            logging.INFO,
            "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
            {"name": "token_metadata.monitor_chain", "id": "b", "runtime": 0.01, "return_value": 0},
        ),
    ]
    kept = [
        # the same task failing
        celery_line(
            "celery.app.trace",
            logging.ERROR,
            "Task %(name)s[%(id)s] raised unexpected: %(exc)s",
            {"name": "token_metadata.dispatch_jobs", "id": "c", "exc": "boom"},
        ),
        # a job's task, and a line of our own naming a housekeeping task
        celery_line(
            "celery.app.trace",
            logging.INFO,
            "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
            {"name": "token_metadata.process_tokens", "id": "d", "runtime": 0.2, "return_value": 0},
        ),
        celery_line("shared.jobs.dispatch", logging.INFO, "token_metadata.dispatch_jobs ran"),
    ]
    assert [handler.filter(line) for line in quiet] == [False] * 3
    assert [bool(handler.filter(line)) for line in kept] == [True] * 3


def test_log_level_debug_shows_every_housekeeping_line() -> None:
    handler = handler_at("debug")
    line = celery_line(
        "celery.beat",
        logging.INFO,
        "Scheduler: Sending due task %s (%s)",
        "dispatch-jobs",
        "token_metadata.dispatch_jobs",
    )
    assert handler.filter(line)
