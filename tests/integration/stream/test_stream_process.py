"""The Procfile's `stream` process itself: it listens on STREAM_HOST/STREAM_PORT, streams
what commits, counts its subscribers on /metrics, and a SIGTERM ends open streams at once."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from support.changes import last_id
from support.processes import free_port, process_env, procfile_command, running, wait_until
from support.stream import subscribed

from shared.changes import entry, record
from shared.db import session_scope
from shared.models import ChangeKind


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_the_stream_process_streams_commits_and_stops_with_its_streams_open(
    tmp_path: Path, settings, sessions
) -> None:
    port = free_port()
    env = process_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "STREAM_HOST": "127.0.0.1",
            "STREAM_PORT": str(port),
        }
    )
    base = f"http://127.0.0.1:{port}"
    with running("stream", procfile_command("stream"), env, tmp_path) as stream:
        wait_until(
            lambda: answers(f"{base}/healthz"),
            30,
            "the stream process to answer",
            alive=lambda: stream.log_tail() if stream.process.poll() is not None else None,
        )
        with subscribed(f"{base}/metadata/v1/changes/stream") as events:
            with session_scope(sessions) as s:
                record(s, [entry(ChangeKind.TOKEN_ADDED, "SP1.apes", 1)])
            assert events.events(1)[0].id == last_id(sessions)
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                assert "token_metadata_stream_subscribers 1.0" in response.read().decode()
            started = time.monotonic()
            stream.stop()
            assert stream.process.returncode == 0, stream.log_tail()
            assert time.monotonic() - started < 5  # the open stream did not hold it
