"""PgBouncer from the system package (/usr/sbin/pgbouncer), started by a test in transaction
mode in front of the run's PostgreSQL server (the `postgres` fixture's, embedded or not), on
a free port with its files in a temporary directory.

PgBouncer refuses to run as root: as root it is started with `-u postgres` and its files
belong to that user. The pool is small on purpose (`pool_size` server connections per
database and user), so that clients share server connections as they would in production.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from support.pg_cluster import SERVER_USER, owned_temp_dir
from support.processes import free_port

PGBOUNCER = "/usr/sbin/pgbouncer"
START_TIMEOUT_S = 20.0


@dataclass
class Pooler:
    port: int
    directory: Path

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def config(port: int, directory: Path, server_host: str, server_port: int, pool_size: int) -> str:
    return f"""\
[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir = {directory}
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
server_check_delay = 0
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""


@contextlib.contextmanager
def pgbouncer(server_url: str, pool_size: int = 4) -> Iterator[Pooler]:
    """PgBouncer in front of the server of `server_url` (its host and port)."""
    if not Path(PGBOUNCER).exists():
        raise RuntimeError(
            f"{PGBOUNCER} is missing: apt-get install pgbouncer (.ci/run installs it)"
        )
    directory = owned_temp_dir("tm-pgbouncer-")
    port = free_port()
    ini = directory / "pgbouncer.ini"
    server = make_url(server_url)
    ini.write_text(
        config(port, directory, server.host or "127.0.0.1", server.port or 5432, pool_size)
    )
    (directory / "userlist.txt").write_text('"postgres" ""\n')
    if os.geteuid() == 0:
        for path in (ini, directory / "userlist.txt"):
            shutil.chown(path, SERVER_USER, SERVER_USER)
    user = ["-u", SERVER_USER] if os.geteuid() == 0 else []
    pooler = Pooler(port, directory)
    output = (directory / "stderr.log").open("wb")
    process = subprocess.Popen(
        [PGBOUNCER, *user, str(ini)], stdout=subprocess.DEVNULL, stderr=output
    )
    try:
        _wait_listening(port, process, pooler)
        yield pooler
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        output.close()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_listening(port: int, process: subprocess.Popen[bytes], pooler: Pooler) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = (pooler.directory / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"pgbouncer exited ({process.returncode}): {stderr}{pooler.log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port} in {START_TIMEOUT_S}s: {pooler.log()}")
