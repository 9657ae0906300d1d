"""`python -m api.serve`: the logging it configures, the server options it passes, and the
Prometheus multiprocess directory it prepares (the process itself: tests/e2e/test_api_server.py)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
from pathlib import Path

import pytest

from api import serve
from shared.config import Settings

ACCESS_FIELDS = {
    "addr": "127.0.0.1",
    "time": "2026-12-02 14:00:00 +0000",
    "method": "GET",
    "path": "/metadata/v1/ft",
    "query_string": "limit=60",
    "protocol": "HTTP/1.1",
    "status": 200,
    "dt_ms": 1.25,
}


def access_line(settings: Settings, fields: dict[str, object]) -> str:
    """Format one access record the way the handler `log_config` declares would (its
    formatter and filters, built from their dotted names), without reconfiguring logging."""
    config = serve.log_config(settings)
    declared = config["handlers"]["access"]
    resolve = logging.config.BaseConfigurator({}).resolve
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter = dict(config["formatters"][declared["formatter"]])
    handler.setFormatter(resolve(formatter.pop("()"))(**formatter))
    for name in declared["filters"]:
        handler.addFilter(resolve(config["filters"][name]["()"])())
    logger = logging.getLogger("probe.access")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info(serve.ACCESS_LOG_FORMAT, fields)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_access_lines_go_to_stdout_by_default_and_carry_the_query_string() -> None:
    assert serve.log_config(Settings())["handlers"]["access"]["stream"] == "ext://sys.stdout"
    entry = json.loads(access_line(Settings(log_format="json"), ACCESS_FIELDS))
    assert entry["logger"] == "probe.access"
    assert entry["message"] == (
        '127.0.0.1 - - [2026-12-02 14:00:00 +0000] "GET /metadata/v1/ft?limit=60 HTTP/1.1" '
        "200 1.2ms"
    )


def test_an_access_line_without_a_query_string_has_no_question_mark() -> None:
    line = access_line(Settings(), {**ACCESS_FIELDS, "query_string": ""})
    assert '"GET /metadata/v1/ft HTTP/1.1" 200' in line


def test_access_log_to_a_file_or_off(tmp_path: Path) -> None:
    to_file = serve.log_config(Settings(api_access_log=str(tmp_path / "access.log")))
    assert to_file["handlers"]["access"]["class"] == "logging.FileHandler"
    assert to_file["handlers"]["access"]["filename"] == str(tmp_path / "access.log")
    off = Settings(api_access_log="off")
    assert "access" not in serve.log_config(off)["handlers"]
    assert serve.log_config(off)["loggers"]["granian.access"]["handlers"] == []
    assert serve.server_options(off)["log_access"] is False


def test_app_and_server_lines_follow_log_format_and_level() -> None:
    config = serve.log_config(Settings(log_format="json", log_level="warning"))
    assert config["formatters"]["service"] == {
        "()": "shared.logs.make_formatter",
        "log_format": "json",
    }
    assert config["root"] == {"handlers": ["service"], "level": "WARNING"}
    assert config["loggers"]["_granian"]["level"] == "WARNING"
    assert config["handlers"]["service"]["stream"] == "ext://sys.stderr"


def test_server_options_follow_the_settings() -> None:
    settings = Settings(api_host="127.0.0.1", api_port=3100, api_workers=3, api_threads=6)
    options = serve.server_options(settings, "bench.constant_app:app")
    assert options["target"] == "bench.constant_app:app"
    assert (options["address"], options["port"]) == ("127.0.0.1", 3100)
    assert (options["workers"], options["blocking_threads"]) == (3, 6)
    assert options["interface"] == "wsgi"
    assert options["respawn_failed_workers"] is True
    assert serve.server_options(Settings())["target"] == "api.wsgi:app"


def test_a_configured_metrics_directory_is_emptied_of_an_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv(serve.MULTIPROCESS_ENV, str(directory))
    with serve.metrics_directory() as prepared:
        assert prepared == directory
        assert list(directory.iterdir()) == []
    assert directory.exists()


def test_without_a_configured_directory_a_temporary_one_is_made_and_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # setenv first, so that the variable the launcher sets is undone after the test
    monkeypatch.setenv(serve.MULTIPROCESS_ENV, "unset below")
    monkeypatch.delenv(serve.MULTIPROCESS_ENV)
    with serve.metrics_directory() as prepared:
        assert prepared.is_dir()
        assert os.environ[serve.MULTIPROCESS_ENV] == str(prepared)
    assert not prepared.exists()
