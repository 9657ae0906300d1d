"""Restarting the test run's PostgreSQL or Redis mid-run (tests/e2e/test_fault_tolerance.py),
whichever servers the run uses (the `servers` fixture, docs/embedded-servers.md):

- embedded ones the run started: stopped and started again on the same port with the same
  data (`EmbeddedPostgres.restart`, `EmbeddedRedis.restart`); nothing else is touched;
- the machine's, at the default addresses (CI's machine): as .ci/run runs them,
  `pg_ctlcluster ... restart` and `redis-server` on 6379;
- any other (one that `DATABASE_URL` or `REDIS_URL` names elsewhere): not the tests' to
  restart, and restarting the machine's instead would prove nothing: the test fails saying so.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import redis

from shared.embedded.choice import address
from shared.embedded.servers import Servers
from support.processes import wait_until

MACHINE_POSTGRES = ("127.0.0.1:5432", "localhost:5432")
MACHINE_REDIS = ("127.0.0.1:6379", "localhost:6379")


def restart_postgres(servers: Servers) -> None:
    if servers.postgres is not None:
        servers.postgres.restart()
        return
    _require_machine_server(servers.database_url, MACHINE_POSTGRES, "PostgreSQL", "DATABASE_URL")
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=120,
    )


def restart_redis(servers: Servers) -> None:
    if servers.redis is not None:
        servers.redis.restart()
        return
    _require_machine_server(servers.redis_url, MACHINE_REDIS, "Redis", "REDIS_URL")
    _restart_machine_redis()


def _require_machine_server(url: str, machine: tuple[str, ...], server: str, variable: str) -> None:
    if address(url) not in machine:
        pytest.fail(
            f"cannot restart the {server} server at {address(url)} ({variable}): the tests "
            f"restart only embedded servers and the machine's at {machine[0]}",
            pytrace=False,
        )


def _restart_machine_redis() -> None:
    """Stop the machine's Redis (it keeps nothing on disk) and start it as .ci/run does."""
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], check=False
    )
    wait_until(lambda: not _machine_redis_up(), 30, "Redis to stop")
    for folder in ("/var/lib/redis", "/var/log/redis"):
        os.makedirs(folder, exist_ok=True)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
        check=True,
        timeout=30,
        start_new_session=True,
    )
    wait_until(_machine_redis_up, 30, "Redis to start again")


def _machine_redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False
