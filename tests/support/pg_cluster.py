"""Temporary PostgreSQL servers of a test's own: a primary made with initdb and a streaming
replica of it made with pg_basebackup -R, each on a free port with its data in a temporary
directory, stopped (immediate) and removed at the end.

The run's server is never reconfigured or restarted: the primary is a new cluster, so its
replication settings (initdb's defaults: wal_level=replica, max_wal_senders 10, trust for
replication from 127.0.0.1) are the test's to rely on. The programs are those of the run's
PostgreSQL (`Programs`): the wheel's when the run's server is embedded (a machine without
PostgreSQL has no others), else the machine's newest installed version. initdb and the
server refuse to run as root, so as root they run as the account the run's server runs as.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.embedded.postgres import UNPRIVILEGED_USER, postgres_bin_dir
from shared.embedded.servers import Servers
from support.processes import free_port

SERVER_USER = "postgres"
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Programs:
    """Where initdb, pg_ctl and pg_basebackup are, and the account they run as when we are
    root."""

    bin_dir: Path
    user: str

    def path(self, name: str) -> str:
        path = self.bin_dir / name
        if not path.exists():
            raise RuntimeError(f"{name} is not in {self.bin_dir}")
        return str(path)

    def run(self, command: list[str]) -> None:
        as_user = ["runuser", "-u", self.user, "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_user, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )


def programs_for(servers: Servers) -> Programs:
    """The programs of the run's PostgreSQL (see the module docstring)."""
    if servers.postgres is not None:
        return Programs(postgres_bin_dir(), UNPRIVILEGED_USER)
    return Programs(Path(_installed_bin("initdb")).parent, SERVER_USER)


def _installed_bin(name: str) -> str:
    """A server program of the newest version installed on the machine."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"{name} is not installed (the PostgreSQL server package has it)")
    return on_path


def owned_temp_dir(prefix: str, user: str = SERVER_USER) -> Path:
    """A directory the server's account owns (pytest's tmp_path is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
    return path


@dataclass
class Server:
    data_dir: Path
    port: int
    programs: Programs

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(database, "postgresql"), autocommit=True)

    def start(self, socket_dir: Path) -> None:
        options = f"-p {self.port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.programs.run(
            [
                self.programs.path("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                options,
                "-l",
                str(log),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ]
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            pg_ctl = self.programs.path("pg_ctl")
            self.programs.run([pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "stop"])


@dataclass
class ReplicatedPair:
    primary: Server
    replica: Server

    def wait_caught_up(self, timeout_s: float = 30.0) -> None:
        """Until the replica replayed everything the primary wrote so far (polled)."""
        with self.primary.connect() as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + timeout_s
        with self.replica.connect() as conn:
            while True:
                behind = conn.execute(
                    "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", (target,)
                ).fetchone()
                if behind is not None and behind[0] is not None and behind[0] <= 0:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the replica did not reach {target} in {timeout_s}s")
                time.sleep(0.02)

    def pause_replay(self) -> None:
        with self.replica.connect() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with self.replica.connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


@contextlib.contextmanager
def primary_server(programs: Programs) -> Iterator[Server]:
    """A new cluster of its own, started on a free port."""
    base = owned_temp_dir("tm-pg-", programs.user)
    primary = Server(base / "primary", free_port(), programs)
    try:
        programs.run(
            [
                programs.path("initdb"),
                "-D",
                str(primary.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        primary.start(base)
        yield primary
    finally:
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def replica_of(primary: Server) -> Iterator[Server]:
    """A streaming replica: pg_basebackup -R of the running primary, started on a free port."""
    programs = primary.programs
    base = owned_temp_dir("tm-pg-replica-", programs.user)
    replica = Server(base / "replica", free_port(), programs)
    try:
        programs.run(
            [
                programs.path("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(replica.data_dir),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",  # the default spread checkpoint takes minutes
            ]
        )
        replica.start(base)
        yield replica
    finally:
        replica.stop()
        shutil.rmtree(base, ignore_errors=True)
