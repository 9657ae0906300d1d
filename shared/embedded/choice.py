"""Which PostgreSQL and Redis a command uses.

Per server: a configured one (`DATABASE_URL` or the reference's `PG*`, `REDIS_URL`) must
answer, or the command stops naming the variable and the address (a typo must never index
into a throwaway database); with nothing configured the default address is used when a
server answers there; else an embedded server is started (`shared.embedded.postgres`,
`shared.embedded.valkey`), on a free loopback port, with its data in a directory of the
caller's (`.run/` for `make run`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import redis
from sqlalchemy.engine import make_url

from shared.config import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, normalize_database_url

POSTGRES = "PostgreSQL"
REDIS = "Redis"
PG_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
# Where to look when nothing is configured. Overridable so that a machine whose servers do
# answer at the defaults can still try the embedded path
# (docs/embedded-servers.md#trying-it-where-servers-run).
DEFAULT_DATABASE_URL_VAR = "DEFAULT_DATABASE_URL"
DEFAULT_REDIS_URL_VAR = "DEFAULT_REDIS_URL"


class ServerNotAnswering(RuntimeError):
    """A configured server does not answer; the message names the variable and address."""


@dataclass(frozen=True)
class Choice:
    """Which server to use: `url` (None: start an embedded one) and the variable that
    configured it (None: the default address, or embedded)."""

    server: str
    url: str | None
    variable: str | None
    default_url: str

    @property
    def embedded(self) -> bool:
        return self.url is None


def address(url: str) -> str:
    """`host:port` of a server URL (never its credentials)."""
    parts = urlsplit(url)
    default_port = 6379 if parts.scheme.startswith("redis") else 5432
    return f"{parts.hostname or 'localhost'}:{parts.port or default_port}"


def postgres_answers(url: str, timeout_s: float = 3.0) -> bool:
    """Whether a PostgreSQL server answers at `url`, as pg_isready judges it (libpq's
    PQping): a server that refuses the login, or is starting, still answers."""
    target = make_url(normalize_database_url(url)).set(
        drivername="postgresql", query={"connect_timeout": str(max(1, int(timeout_s)))}
    )
    conninfo = target.render_as_string(hide_password=False).encode()
    return psycopg.pq.PGconn.ping(conninfo) in (psycopg.pq.Ping.OK, psycopg.pq.Ping.REJECT)


def redis_answers(url: str, timeout_s: float = 3.0) -> bool:
    """Whether a Redis server answers at `url` (a refused password is still an answer)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.AuthenticationError, redis.ResponseError):
        return True
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


def choose(
    server: str,
    configured: tuple[str, str] | None,
    default_url: str,
    answers: Callable[[str], bool],
) -> Choice:
    """The rule of the module docstring, for one server."""
    if configured is not None:
        variable, url = configured
        if not answers(url):
            raise ServerNotAnswering(
                f"{variable}: no {server} server answers at {address(url)} "
                f"(set {variable} to a server that runs, or unset it to use the default)"
            )
        return Choice(server, url, variable, default_url)
    if answers(default_url):
        return Choice(server, default_url, None, default_url)
    return Choice(server, None, None, default_url)


def configured_postgres(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(variable, URL) of the PostgreSQL server the environment names, if it names one."""
    if env.get("DATABASE_URL"):
        return "DATABASE_URL", env["DATABASE_URL"]
    named = [name for name in PG_VARIABLES if env.get(name)]
    if not named:
        return None
    user = env.get("PGUSER") or "postgres"
    password = env.get("PGPASSWORD")
    url = make_url("postgresql+psycopg://").set(
        username=user,
        password=password or None,
        host=env.get("PGHOST") or "127.0.0.1",
        port=int(env.get("PGPORT") or 5432),
        database=env.get("PGDATABASE") or "token_metadata",
    )
    return "/".join(named), url.render_as_string(hide_password=False)


def choose_postgres(env: Mapping[str, str], answers: Callable[[str], bool] | None = None) -> Choice:
    default = env.get(DEFAULT_DATABASE_URL_VAR) or DEFAULT_DATABASE_URL
    return choose(POSTGRES, configured_postgres(env), default, answers or postgres_answers)


def choose_redis(env: Mapping[str, str], answers: Callable[[str], bool] | None = None) -> Choice:
    configured = ("REDIS_URL", env["REDIS_URL"]) if env.get("REDIS_URL") else None
    default = env.get(DEFAULT_REDIS_URL_VAR) or DEFAULT_REDIS_URL
    return choose(REDIS, configured, default, answers or redis_answers)
