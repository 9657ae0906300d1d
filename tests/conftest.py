"""Fixtures on real servers: PostgreSQL and Redis, those `DATABASE_URL` and `REDIS_URL` name
(which must answer), else those at the default addresses (127.0.0.1:5432, trust auth for user
`postgres`, and 127.0.0.1:6379), else embedded ones started for the run with their data under
`.run/test-servers/` (docs/embedded-servers.md). The database and DB number in those URLs are
not used: the run makes its own.

Every run migrates one template database with Alembic; each test that needs a database gets
its own copy (CREATE DATABASE ... TEMPLATE) and it is dropped afterwards. A copy takes about
half a second, most of an integration test's time, so background threads keep the next
copies ready while tests run (`TemplateCopies`) and another drops used ones. The run takes a
Redis DB number of its own and flushes it at the end.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from support.processes import ROOT, process_env, reap_orphans

from shared.config import Settings
from shared.db import make_engine
from shared.embedded.choice import ServerNotAnswering, address, configured_postgres
from shared.embedded.servers import Servers, provide, stop_embedded

RUN_ID = uuid.uuid4().hex[:8]
TEST_SERVERS_DIR = ROOT / ".run" / "test-servers"
RUN_LOCK_KEY = "stacks-token-metadata:test-run-lock"


class Postgres:
    """Creates and drops the test run's databases through the maintenance database."""

    def __init__(self, server_url: str, admin: Engine) -> None:
        self.server_url = server_url  # with the user that could log in, without a database
        self.admin = admin
        self.created: list[str] = []
        self._lock = threading.Lock()  # `created` is also changed by TemplateCopies' thread

    def url(self, name: str) -> str:
        return f"{self.server_url}/{name}"

    def create(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        with self._lock:
            self.created.append(name)
        return self.url(name)

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        with self._lock:
            if name in self.created:
                self.created.remove(name)


class TemplateCopies:
    """Copies of the migrated template made ahead by background threads (Postgres makes two
    at once in the time of one), and used copies dropped by another. If no copy is ready in
    time (Postgres restarting in a fault test), `take` makes one in the test's own thread."""

    AHEAD = 4
    MAKERS = 2

    def __init__(self, postgres: Postgres, template: str) -> None:
        self.postgres = postgres
        self.template = template
        self.ready: queue.Queue[str] = queue.Queue(maxsize=self.AHEAD)
        self.used: queue.Queue[str | None] = queue.Queue()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._make, name=f"template-copy-{n}", daemon=True)
            for n in range(self.MAKERS)
        ]
        self.threads.append(threading.Thread(target=self._drop, name="template-drop", daemon=True))
        for thread in self.threads:
            thread.start()

    def take(self) -> str:
        try:
            return self.ready.get(timeout=5)
        except queue.Empty:
            return self._copy()

    def give_back(self, name: str) -> None:
        self.used.put(name)

    def close(self) -> None:
        """Stop making copies and drop the used ones; copies never taken stay in the
        `Postgres` fixture's list, which drops them at the session's end."""
        self.stopping.set()
        self.used.put(None)
        for thread in self.threads:
            thread.join(30)

    def _copy(self) -> str:
        name = f"tm_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        self.postgres.create(name, template=self.template)
        return name

    def _make(self) -> None:
        while not self.stopping.is_set():
            try:
                name = self._copy()
            except Exception:
                self.stopping.wait(0.5)  # Postgres away: tests make their own copies
                continue
            while not self.stopping.is_set():
                try:
                    self.ready.put(name, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _drop(self) -> None:
        while (name := self.used.get()) is not None:
            # A failed drop leaves the name in `created`: dropped at the session's end.
            with contextlib.suppress(Exception):
                self.postgres.drop(name)


def _connect_admin(server_url: str) -> tuple[str, Engine]:
    """The server URL with a user that can log in, and an engine on its maintenance database.
    The default server is tried as `postgres`, then `root`; a configured one as its user."""
    server = make_url(server_url)
    configured = configured_postgres(os.environ) is not None
    users = [server.username] if configured else ["postgres", "root"]
    errors = []
    for user in users:
        as_user = server._replace(username=user).render_as_string(hide_password=False)
        engine = create_engine(
            f"{as_user}/postgres",
            isolation_level="AUTOCOMMIT",
            pool_pre_ping=True,  # survives the Postgres restart of the fault-tolerance test
        )
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return as_user, engine
        except Exception as exc:
            errors.append(f"{user}: {exc}")
            engine.dispose()
    pytest.fail(
        f"cannot log in to PostgreSQL at {address(server_url)} (trust auth, "
        f"user {' or '.join(str(u) for u in users)}): " + "; ".join(errors),
        pytrace=False,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the browser tests' screenshots are (pytest hides what passing tests print)."""
    taken = sys.modules.get("support.browser")
    if taken is not None and taken.TAKEN:
        terminalreporter.section("screenshots")
        for path in taken.TAKEN:
            terminalreporter.write_line(str(path))


@pytest.fixture(scope="session", autouse=True)
def no_orphans_of_killed_runs() -> None:
    """Workers and beats that a killed earlier run left behind would eat this run's messages."""
    reaped = reap_orphans()
    if reaped:
        print(f"\nkilled {len(reaped)} processes left running by an earlier, killed test run")


def _stop_servers_of_killed_runs() -> None:
    """Embedded servers whose run was killed, and their data. (`reap_orphans` cannot tell
    them: both servers rewrite their process title over the environment it reads.)"""
    for path in TEST_SERVERS_DIR.glob("*-*"):
        owner = path.name.split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(Exception):
                stop_embedded(path)
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest, no_orphans_of_killed_runs: None) -> Iterator[Servers]:
    """The run's PostgreSQL and Redis (see the module docstring); embedded ones started here
    (`.postgres`, `.redis`: what tests/support/restarts.py restarts) are stopped, and their
    data removed, when the run ends."""
    _stop_servers_of_killed_runs()
    run_dir = TEST_SERVERS_DIR / f"{os.getpid()}-{RUN_ID}"
    started: list[str] = []
    try:
        found = provide(
            os.environ,
            run_dir,
            durable=False,
            server_env=process_env({}),
            say=started.append,
        )
    except ServerNotAnswering as exc:
        pytest.fail(str(exc), pytrace=False)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for line in started:
            if "embedded" in line:
                print(f"\n{line}", end="", flush=True)
    yield found
    found.stop()
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(servers: Servers) -> Iterator[Postgres]:
    server_url, admin = _connect_admin(servers.database_server_url())
    pg = Postgres(server_url, admin)
    yield pg
    for name in list(pg.created):
        pg.drop(name)
    admin.dispose()


def migrate(url: str) -> None:
    config = Config(str(Path(__file__).resolve().parents[1] / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def migrated_template(postgres: Postgres) -> str:
    name = f"tm_test_{RUN_ID}_template"
    migrate(postgres.create(name))
    return name


@pytest.fixture(scope="session")
def template_copies(postgres: Postgres, migrated_template: str) -> Iterator[TemplateCopies]:
    copies = TemplateCopies(postgres, migrated_template)
    yield copies
    copies.close()


@pytest.fixture
def database_url(postgres: Postgres, template_copies: TemplateCopies) -> Iterator[str]:
    """A freshly migrated database of this test's own."""
    name = template_copies.take()
    yield postgres.url(name)
    template_copies.give_back(name)


@pytest.fixture
def stacks_api_database_url(postgres: Postgres) -> Iterator[str]:
    """An empty database to seed as a Stacks Blockchain API database."""
    name = f"tm_test_{RUN_ID}_sba_{uuid.uuid4().hex[:8]}"
    url = postgres.create(name)
    yield url
    postgres.drop(name)


@pytest.fixture(scope="session")
def redis_url(servers: Servers) -> Iterator[str]:
    """A Redis DB number no other test run holds (claimed with a lock key), flushed after."""
    lock_key = RUN_LOCK_KEY
    parts = urlsplit(servers.redis_url)
    server = f"{parts.scheme}://{parts.netloc}"
    for db in range(1, 16):
        client = redis.Redis.from_url(f"{server}/{db}")
        try:
            claimed = client.set(lock_key, RUN_ID, nx=True, ex=3600)
        except redis.ConnectionError as exc:
            pytest.fail(f"Redis is not reachable at {parts.netloc}: {exc}", pytrace=False)
        if claimed:
            client.flushdb()  # leftovers of a crashed run whose lock expired
            client.set(lock_key, RUN_ID, ex=3600)
            yield f"{server}/{db}"
            client.flushdb()
            client.close()
            return
        client.close()
    pytest.fail("no free Redis DB number (1-15) for this test run", pytrace=False)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on this test's database (the caller commits, as services expect)."""
    engine = make_engine(settings.database_url, pool_size=4)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return replace(
        Settings(),
        database_url=database_url,
        redis_url=redis_url,
        metadata_fetch_allow_private_networks=True,
        metadata_fetch_timeout_ms=5000,
        stacks_node_timeout_s=5.0,
    )
