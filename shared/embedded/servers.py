"""The servers a command uses, as `make run` (`python -m shared.manage servers`) and the
tests' `servers` fixture ask for them: decided per server (`shared.embedded.choice`), the
embedded ones started and, at the end, stopped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from shared.config import normalize_database_url
from shared.embedded.choice import (
    POSTGRES,
    REDIS,
    Choice,
    address,
    choose_postgres,
    choose_redis,
)
from shared.embedded.postgres import EmbeddedPostgres
from shared.embedded.valkey import EmbeddedRedis


@dataclass
class Servers:
    """The servers a command uses: URLs, and the embedded ones it started (to stop)."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def database_server_url(self) -> str:
        """`database_url` without its database name (the tests make databases of their own)."""
        return server_part(self.database_url)

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def server_part(url: str) -> str:
    """A database URL without its database name."""
    server = make_url(normalize_database_url(url))._replace(database=None)
    return server.render_as_string(hide_password=False)


def describe_started(choice: Choice, what: str, port: int, data: Path) -> str:
    variable = "DATABASE_URL" if choice.server == POSTGRES else "REDIS_URL"
    return (
        f"{choice.server}: nothing answers at {address(choice.default_url)} and {variable} is "
        f"not set: started an embedded {what} on 127.0.0.1:{port} (data: {data})"
    )


def describe_used(choice: Choice, url: str) -> str:
    return f"{choice.server}: using the server at {address(url)} ({choice.variable or 'default'})"


def provide(
    env: Mapping[str, str],
    run_dir: Path,
    *,
    durable: bool = True,
    server_env: Mapping[str, str] | None = None,
    say: Callable[[str], None] = print,
) -> Servers:
    """Decide per server, start the embedded ones needed (data in `run_dir`/postgres and
    `run_dir`/redis) and say in one line each what is used. Raises ServerNotAnswering before
    starting anything when a configured server does not answer."""
    pg_choice = choose_postgres(env)
    redis_choice = choose_redis(env)
    servers = Servers(database_url="", redis_url="")
    try:
        if pg_choice.url is None:
            pg = servers.postgres = EmbeddedPostgres(
                run_dir / "postgres", durable=durable, env=server_env
            )
            port = pg.start()
            database = make_url(normalize_database_url(pg_choice.default_url)).database
            servers.database_url = pg.url(database or "token_metadata")
            say(describe_started(pg_choice, f"PostgreSQL {pg.version()}", port, pg.data_dir))
        else:
            servers.database_url = pg_choice.url
            say(describe_used(pg_choice, pg_choice.url))
        if redis_choice.url is None:
            valkey = servers.redis = EmbeddedRedis(run_dir / "redis", env=server_env)
            port = valkey.start()
            servers.redis_url = valkey.url()
            say(describe_started(redis_choice, f"Valkey {valkey.version()}", port, valkey.data_dir))
        else:
            servers.redis_url = redis_choice.url
            say(describe_used(redis_choice, redis_choice.url))
    except BaseException:
        servers.stop()
        raise
    return servers


def stop_embedded(run_dir: Path) -> list[str]:
    """Stop the embedded servers running on `run_dir`'s data; the names of those stopped."""
    stopped = []
    if EmbeddedRedis(run_dir / "redis").stop():
        stopped.append(REDIS)
    if (run_dir / "postgres" / "PG_VERSION").exists() and EmbeddedPostgres(
        run_dir / "postgres"
    ).stop():
        stopped.append(POSTGRES)
    return stopped
