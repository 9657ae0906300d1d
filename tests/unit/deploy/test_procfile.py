"""The Procfile is the one definition of every process: the image's entry point runs its lines
verbatim, and `make run` starts api, stream, worker, beat and flower from it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from support.processes import ROOT, procfile_command

from shared.queues import WORKER_QUEUES

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


def entrypoint(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(ENTRYPOINT), *args],
        env={"PATH": os.environ["PATH"], **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def stub_celery(tmp_path: Path) -> dict[str, str]:
    """A `celery` on PATH that prints the arguments it was given, one per line."""
    stub = tmp_path / "bin" / "celery"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n')
    stub.chmod(0o755)
    return {"PATH": f"{stub.parent}:{os.environ['PATH']}"}


def test_a_process_name_runs_its_procfile_line_in_place_of_the_shell(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text('web: echo "${GREETING:-hello}" $$\nweb2: echo wrong\n')
    output = entrypoint("web", env={"PROCFILE": str(procfile), "GREETING": "hi"})
    greeting, pid = output.split()
    assert greeting == "hi"
    assert pid.isdigit()


def test_anything_else_runs_as_a_command(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: echo the web process\n")
    command = tmp_path / "we"
    command.write_text("#!/bin/sh\necho the we command\n")
    command.chmod(0o755)
    env = {"PROCFILE": str(procfile), "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    assert entrypoint("echo", "web", env=env) == "web"  # arguments: a command, not a process
    assert entrypoint("we", env=env) == "the we command"  # a name's prefix is not the name


def test_the_worker_consumes_every_queue_with_the_threads_pool(tmp_path: Path) -> None:
    args = entrypoint("worker", env=stub_celery(tmp_path)).splitlines()
    assert args[:4] == ["-A", "workers", "worker", "--pool"]
    assert args[args.index("--pool") + 1] == "threads"
    assert args[args.index("--queues") + 1] == ",".join(WORKER_QUEUES)
    assert args[args.index("--concurrency") + 1] == "16"
    assert re.fullmatch(r"worker-%h-\d+", args[args.index("--hostname") + 1])


def test_flower_listens_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    env = stub_celery(tmp_path)
    args = entrypoint("flower", env=env).splitlines()
    assert args[:3] == ["-A", "workers", "flower"]
    assert "--address=127.0.0.1" in args
    assert "--port=5555" in args
    assert "--address=0.0.0.0" in entrypoint("flower", env={**env, "FLOWER_ADDRESS": "0.0.0.0"})


def test_make_run_starts_api_stream_worker_beat_and_flower_but_not_the_release() -> None:
    script = (ROOT / "deploy" / "run-local.sh").read_text()
    pattern = re.search(r"grep -E '([^']+)' Procfile > \"\$run_dir/Procfile\"", script)
    assert pattern is not None
    names = [line.partition(":")[0] for line in (ROOT / "Procfile").read_text().splitlines()]
    started = [name for name in names if re.match(pattern.group(1), f"{name}:")]
    assert sorted(started) == ["api", "beat", "flower", "stream", "worker"]
    assert procfile_command("release") == "alembic upgrade head"


def test_the_stream_process_serves_the_change_stream_with_aiohttp() -> None:
    assert procfile_command("stream") == "python -m api.stream"  # binds STREAM_PORT, default 3001
