"""Runs the Procfile's real processes (and other commands) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

from shared.embedded.ports import free_port
from shared.embedded.processes import pid_alive

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def child_pids(pid: int) -> list[int]:
    """The direct children of process `pid` (all its threads'), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise KeyError(f"Procfile has no {name!r} process")


OWNER_VAR = "STM_TEST_OWNER_PID"


def run_release(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The Procfile's `release` step (the migrations), run to its end with `env`."""
    return subprocess.run(
        ["bash", "-c", procfile_command("release")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def process_env(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "STACKS_", "DATABASE"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env[OWNER_VAR] = str(os.getpid())  # lets a later run reap what a killed run left behind
    env.update(overrides)
    return env


class Running:
    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- {self.name} (exit {self.process.poll()}) ---\n" + "\n".join(text[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def reap_orphans() -> list[int]:
    """Kill processes that an earlier, killed test run started and left running.

    A pytest run that dies by SIGKILL cannot stop its Procfile processes; a worker or beat
    left behind consumes the messages of later runs that reuse its Redis DB number. Every
    process started here carries OWNER_VAR; one whose owner is gone is an orphan.
    """
    reaped = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        owner = next((v for v in environ if v.startswith(OWNER_VAR.encode() + b"=")), None)
        if owner is None:
            continue
        owner_pid = int(owner.split(b"=", 1)[1] or 0)
        if owner_pid == os.getpid() or pid_alive(owner_pid):
            continue
        try:
            os.kill(int(entry.name), signal.SIGKILL)
            reaped.append(int(entry.name))
        except ProcessLookupError:
            pass
    return reaped


@contextmanager
def running(name: str, command: str, env: Mapping[str, str], log_dir: Path) -> Iterator[Running]:
    """Start `command` in its own process group from the repository root; stop it after."""
    log_path = log_dir / f"{name}.log"
    log: IO[bytes] = log_path.open("wb")
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=ROOT,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc = Running(name, process, log_path)
    try:
        yield proc
    finally:
        proc.stop()
        log.close()


@contextmanager
def running_api(
    log_dir: Path, database_url: str, redis_url: str, **settings: str
) -> Iterator[tuple[str, Running]]:
    """The Procfile's `api` process on a free loopback port with these extra settings, once its
    status route answers 200; yields its base URL and the process."""
    port = free_port()
    env = process_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(port),
            **settings,
        }
    )
    base = f"http://127.0.0.1:{port}"
    with running("api", procfile_command("api"), env, log_dir) as api:
        wait_until(
            lambda: _answers_200(f"{base}/metadata/v1/"),
            60,
            "the api process to answer",
            alive=lambda: api.log_tail() if api.process.poll() is not None else None,
        )
        yield base, api


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:  # not listening yet, or still warming up
        return False


def wait_until(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.2,
    alive: Callable[[], str | None] = lambda: None,
) -> T:
    """Poll `check` until it returns something truthy, with a deadline; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        dead = alive()
        if dead:
            raise AssertionError(f"gave up waiting for {what}: {dead}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)  # polling interval, not synchronisation
