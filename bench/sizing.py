"""What one token and one API request cost, for the sizing guide (docs/scaling.md).

Indexes the benchmark's chain (`bench/run.py`'s scenario: 3 NFT collections totalling
`--nft-tokens`, 5 FTs, 2x50 SFTs) with the Procfile's real `worker` and `beat` at the product's
defaults, against fresh databases and a Redis DB of its own (`bench/indexing_run.py`), and
reports per token:

- the worker's CPU (user + system time of the process, its start included);
- Postgres's CPU: the backends serving the run's two databases (ours and the simulated Stacks
  API's), found by their process titles under the postmaster every 0.1 s and read from
  /proc/<pid>/stat, grouped by the client's `application_name`;
- rows and bytes: every table's rows and `pg_total_relation_size` (heap, indexes, TOAST) once
  every job has settled;
- writes: the rows the run's database inserted, updated and deleted (`pg_stat_database`), per
  token and per second, and the WAL the server wrote meanwhile (`pg_current_wal_lsn()`): on a
  shared server everyone's, so `--private-postgres` indexes on a server started for the run
  (initdb), whose WAL and every process are the run's.

Then the API's CPU per request on the main routes, in process: the Flask/WSGI app called
directly, one request after the other, on the seeded million-token database of
`bench/api/seed.py` (`tm_bench_api`, read through read-only transactions), with the CPU of the
Postgres backend that served them.

    .venv/bin/python bench/sizing.py                          # one-host, 10,000 NFTs, API
    .venv/bin/python bench/sizing.py --scenario both --write bench/RESULTS.md
    .venv/bin/python bench/sizing.py --skip-api --nft-tokens 20000
    .venv/bin/python bench/sizing.py --private-postgres --scenario both --skip-api

CPU times are the measure to size with: other work on a shared machine stretches wall-clock
times (the report gives the load average and the machine's busy share during the run) but adds
little to the CPU a process spends on its own work. The limits of each method are in
docs/scaling.md#method. Needs a Postgres on this machine (its backends' /proc entries are read).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
import run as bench  # noqa: E402 - bench/run.py: the scenario, the machine facts, the CPU check
import webhook_latency  # noqa: E402 - bench/webhook_latency.py: where the runs' databases are
from indexing_run import Indexing, index_scenario  # noqa: E402
from psycopg import sql  # noqa: E402
from support.processes import child_pids, free_port  # noqa: E402

from devnet.scenario import Scenario  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.1
API_DATABASE = "tm_bench_api"
SHARED_ADMIN_URL = bench.ADMIN_URL  # the machine's server, where the API's database is
# Who opened each backend (the processes set `application_name`; shared.db, workers.runtime).
CLIENTS = {
    "tm-worker": "worker (jobs)",
    "tm-chain-reader": "worker (chain reads)",
    "tm-worker-metrics": "worker (metrics)",
    "token-metadata": "beat and other clients",
    "bench": "the benchmark's own polling (not counted)",
    "bench-sizing": "this script's own queries (not counted)",
    "?": "ended before it was identified",
    "": "clients without a name",
}
OWN_QUERIES = "bench-sizing"
NOT_COUNTED = {"bench", OWN_QUERIES}
SERVER_PROCESSES = "server processes (WAL writer, checkpointer, autovacuum...)"


# --- CPU of processes and of Postgres backends ----------------------------------------------


def process_cpu_s(pid: int) -> tuple[float, int] | None:
    """(user + system CPU seconds of all its threads, start time in clock ticks since boot) of
    a process, in clock ticks (10 ms)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command: state is field 3, utime 14, stime 15, starttime 22 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[19])


def backend_cpu_s(pid: int) -> tuple[float, int] | None:
    """As `process_cpu_s`, to the nanosecond for a single-threaded process (a Postgres
    backend): /proc/<pid>/schedstat's time on CPU is its main thread's."""
    reading = process_cpu_s(pid)
    try:
        on_cpu_ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return reading
    return (on_cpu_ns / 1e9, reading[1]) if reading else None


def uptime_ticks() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * CLOCK_TICKS)


def postmaster_pid(conn: psycopg.Connection[Any]) -> int:
    """The parent of this connection's backend: the server every backend is a child of."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    stat = Path(f"/proc/{row[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return int(stat[1])


def title_words(pid: int) -> list[str]:
    """A backend's process title: `postgres: 15/main: USER DATABASE HOST(PORT) STATE`."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().split()
    except OSError:
        return []


@dataclass
class Backend:
    database: str
    client: str
    first_cpu_s: float  # 0 when it started after the measurement did
    last_cpu_s: float
    ended: bool = False


@dataclass
class BackendCpu:
    """CPU of the Postgres backends serving `databases` (None: every process of the server),
    from their first sight to their last.

    A backend found already running counts from its first reading; one started later counts
    from zero. A backend that exits between two readings loses what it spent since the last
    one (at most SAMPLE_S of CPU): `ended` counts them.
    """

    databases: tuple[str, ...] | None
    postmaster: int
    admin: psycopg.Connection[Any]
    started_ticks: int = field(default_factory=uptime_ticks)
    backends: dict[tuple[int, int], Backend] = field(default_factory=dict)

    def sample(self) -> None:
        seen = set()
        for pid in child_pids(self.postmaster):
            words = title_words(pid)
            if self.databases is None:
                database = "the whole server"
            else:
                database = next((d for d in self.databases if d in words), "")
            if not database:
                continue
            cpu = backend_cpu_s(pid)
            if cpu is None:
                continue
            seconds, start = cpu
            key = (pid, start)
            seen.add(key)
            backend = self.backends.get(key)
            if backend is None:
                first = seconds if start < self.started_ticks else 0.0
                backend = Backend(database, self.client_of(pid), first, seconds)
                self.backends[key] = backend
            backend.last_cpu_s = seconds
        for key, backend in self.backends.items():
            if key not in seen:
                backend.ended = True

    def client_of(self, pid: int) -> str:
        """The client's application_name, or the kind of a server process (walwriter, ...)."""
        row = self.admin.execute(
            "SELECT application_name, backend_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        if row is None:
            return "?"
        name, kind = row
        return str(name) if kind == "client backend" else SERVER_PROCESSES

    def by_client(self) -> dict[tuple[str, str], float]:
        totals: dict[tuple[str, str], float] = defaultdict(float)
        for backend in self.backends.values():
            totals[backend.database, backend.client] += backend.last_cpu_s - backend.first_cpu_s
        return dict(totals)


@dataclass
class Machine:
    """The machine's load during the run: 1-minute load averages and the busy share of its
    cores (from /proc/stat), which other work on it raises."""

    loads: list[float] = field(default_factory=list)
    busy_start: tuple[int, int] = (0, 0)
    busy_share: float = 0.0

    @staticmethod
    def busy_total() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    def start(self) -> None:
        self.busy_start = self.busy_total()

    def sample(self) -> None:
        self.loads.append(float(Path("/proc/loadavg").read_text().split()[0]))

    def stop(self) -> None:
        busy, total = self.busy_total()
        self.busy_share = (busy - self.busy_start[0]) / max(total - self.busy_start[1], 1)


# --- one indexing run ------------------------------------------------------------------------


@dataclass
class Indexed:
    scenario: str
    private: bool  # on a Postgres server of its own (every process and all WAL are the run's)
    tokens: int = 0
    contracts: int = 0
    seconds: float = 0.0  # the processes started -> every job settled
    not_done: int = 0
    process_cpu_s: dict[str, float] = field(default_factory=dict)
    postgres_cpu_s: dict[tuple[str, str], float] = field(default_factory=dict)
    backends: int = 0
    backends_ended: int = 0
    tables: list[tuple[str, int, int, int]] = field(default_factory=list)  # name rows total idx
    database_bytes: int = 0
    writes: dict[str, int] = field(default_factory=dict)
    wal_bytes: int = 0
    loads: list[float] = field(default_factory=list)
    busy_share: float = 0.0

    def rows_written(self) -> int:
        return sum(v for k, v in self.writes.items() if k != "commits")


WRITES = """SELECT tup_inserted, tup_updated, tup_deleted, xact_commit FROM pg_stat_database
            WHERE datname = %s"""
TABLES = """SELECT c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 2 DESC"""


def wal_lsn(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    assert row is not None
    return int(row[0])


def one(conn: psycopg.Connection[Any], sql: str, *args: Any) -> tuple[Any, ...]:
    row = conn.execute(sql, args or None).fetchone()
    assert row is not None
    return tuple(row)


def index_once(options: bench.Options, timeout_s: float, private: bool) -> Indexed:
    """One indexing run; `private`: the server is this run's alone (`private_postgres`), so its
    every process and all of its WAL are the run's."""
    result = Indexed(options.scenario_name, private)
    scenario = Scenario.from_dict(bench.scenario(options), source="bench/sizing.py")
    tokens = bench.expected_tokens(options)
    # Filled in `measured`, read in `after`.
    database_url, database_name = [""], [""]
    writes_start: list[int] = []

    @contextmanager
    def measured(run: Indexing) -> Iterator[None]:
        database, chain = (run.database_url.rsplit("/", 1)[1], run.chain_url.rsplit("/", 1)[1])
        database_url[0], database_name[0] = run.database_url, database
        with psycopg.connect(
            bench.ADMIN_URL, autocommit=True, application_name=OWN_QUERIES
        ) as admin:
            wal_start = wal_lsn(admin)
            writes_start[:] = one(admin, WRITES, database)
            databases = None if private else (database, chain)
            cpu = BackendCpu(databases, postmaster_pid(admin), admin)
            machine = Machine()
            machine.start()
            stopped = threading.Event()

            def sample() -> None:
                while not stopped.wait(SAMPLE_S):
                    cpu.sample()
                    machine.sample()

            started = time.monotonic()
            thread = threading.Thread(target=sample, daemon=True)
            thread.start()
            try:
                yield
            finally:
                stopped.set()
                thread.join()
                cpu.sample()
                machine.stop()
                result.seconds = time.monotonic() - started
                for name, proc in run.processes.items():
                    reading = process_cpu_s(proc.process.pid)
                    result.process_cpu_s[name] = reading[0] if reading else float("nan")
                result.wal_bytes = wal_lsn(admin) - wal_start
                result.postgres_cpu_s = cpu.by_client()
                result.backends = len(cpu.backends)
                result.backends_ended = sum(b.ended for b in cpu.backends.values())
                result.loads, result.busy_share = machine.loads, machine.busy_share

    def after(_net: object) -> None:
        """Once the processes have stopped (their backends flushed their statistics)."""
        with psycopg.connect(bench.ADMIN_URL, autocommit=True) as admin:
            time.sleep(1.5)  # statistics reach pg_stat_database at most once a second
            end = one(admin, WRITES, database_name[0])
        names = ("inserted", "updated", "deleted", "commits")
        result.writes = {n: b - a for n, a, b in zip(names, writes_start, end, strict=True)}
        plain_url = database_url[0].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain_url, autocommit=True) as conn:
            result.tokens = one(conn, "SELECT count(*) FROM tokens")[0]
            result.contracts = one(conn, "SELECT count(*) FROM smart_contracts")[0]
            result.database_bytes = one(conn, "SELECT pg_database_size(current_database())")[0]
            for name, total, indexes in conn.execute(TABLES).fetchall():
                count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
                rows = one(conn, count.as_string(conn))[0]
                result.tables.append((name, rows, total, indexes))

    indexed = index_scenario(scenario, tokens, {}, timeout_s, during=measured, before_stop=after)
    result.not_done = indexed.not_done
    return result


# --- the API, in process ---------------------------------------------------------------------


@dataclass
class RouteCost:
    route: str
    requests: int
    app_cpu_ms: float  # this process's CPU per request (Flask/WSGI app, psycopg, gzip)
    postgres_cpu_ms: float  # the backend's CPU per request
    wall_ms: float  # one request after the other, no concurrency
    statuses: dict[int, int]
    bytes_per_request: float


def api_requests(url: str, count: int) -> dict[str, list[tuple[str, str, bytes | None]]]:
    """(method, path, body) of each route's requests, random tokens of the seeded database."""
    rng = random.Random(21)
    with psycopg.connect(url) as conn:
        collections = conn.execute(
            """SELECT c.principal, max(t.token_number) FROM smart_contracts c
               JOIN tokens t ON t.smart_contract_id = c.id
               WHERE c.sip = 'sip-009' GROUP BY c.principal"""
        ).fetchall()
        fts = [
            r[0]
            for r in conn.execute("SELECT principal FROM smart_contracts WHERE sip = 'sip-010'")
        ]
        owners = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT owner FROM nft_ownership WHERE owner IS NOT NULL LIMIT 2000"
            )
        ]
    if not collections or not fts:
        raise SystemExit(f"{url} has no NFT collections or FTs: run bench/api/seed.py first")

    def nft() -> tuple[str, int]:
        principal, last = rng.choice(collections)
        return principal, rng.randint(1, int(last))

    def batch() -> bytes:
        items = [{"contract_id": p, "token_id": str(n)} for p, n in (nft() for _ in range(100))]
        return json.dumps({"tokens": items}, separators=(",", ":")).encode()

    def cursor_page() -> str:
        principal, last = rng.choice(collections)
        after = rng.randrange(0, max(1, int(last) - 100))
        cursor = base64.urlsafe_b64encode(str(after).encode()).decode().rstrip("=")
        return f"/metadata/v1/nft/{principal}?limit=100&cursor={cursor}"

    routes: dict[str, list[tuple[str, str, bytes | None]]] = {
        "GET /nft/{principal}/{id}": [
            ("GET", "/metadata/v1/nft/{}/{}".format(*nft()), None) for _ in range(count)
        ],
        "GET /ft/{principal}": [
            ("GET", f"/metadata/v1/ft/{rng.choice(fts)}", None) for _ in range(count)
        ],
        "GET /search (50 NFTs)": [
            (
                "GET",
                "/metadata/v1/search?"
                + "&".join("contract={}:{}".format(*nft()) for _ in range(50)),
                None,
            )
            for _ in range(count)
        ],
        "GET /ft?limit=60": [("GET", "/metadata/v1/ft?limit=60", None)] * count,
        "GET /nft/{principal}?limit=100 (a collection page)": [
            ("GET", cursor_page(), None) for _ in range(count)
        ],
        "POST /tokens/batch (100 NFTs)": [
            ("POST", "/metadata/v1/tokens/batch", batch()) for _ in range(count)
        ],
    }
    if owners:
        routes["GET /owners/{principal}/nft?limit=100"] = [
            ("GET", f"/metadata/v1/owners/{rng.choice(owners)}/nft?limit=100", None)
            for _ in range(count)
        ]
    return routes


@dataclass
class WsgiCaller:
    """Calls a WSGI app as a server would, reading its whole answer; counts statuses, bytes."""

    app: Any
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    sent: int = 0

    def start_response(self, status: str, _headers: Any, _exc_info: Any = None) -> None:
        self.statuses[int(status.split()[0])] += 1

    def __call__(self, environ: dict[str, Any]) -> None:
        answer = self.app(environ, self.start_response)
        try:
            for chunk in answer:
                self.sent += len(chunk)
        finally:
            getattr(answer, "close", lambda: None)()


def measure_api(database: str, count: int, warmup: int) -> list[RouteCost]:
    from werkzeug.test import EnvironBuilder

    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    os.environ["DATABASE_URL"] = url
    # Read-only transactions (libpq reads PGOPTIONS): nothing here can change the seeded database.
    os.environ["PGOPTIONS"] = "-c default_transaction_read_only=on"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["API_ACCESS_LOG"] = "/dev/null"
    from api.app import create_app

    app = create_app()
    routes = api_requests(url, count + warmup)
    costs = []
    with psycopg.connect(SHARED_ADMIN_URL, autocommit=True) as admin:
        postmaster = postmaster_pid(admin)
        for route, requests in routes.items():
            environs = [
                EnvironBuilder(
                    path=path.split("?", 1)[0],
                    query_string=path.split("?", 1)[1] if "?" in path else None,
                    method=method,
                    data=body,
                    content_type="application/json" if body else None,
                    headers=[("Accept-Encoding", "gzip")],
                ).get_environ()
                for method, path, body in requests
            ]
            caller = WsgiCaller(app)
            for environ in environs[:warmup]:
                caller(environ)
            caller.statuses.clear()
            caller.sent = 0
            # The pool's connections stay open: their backends' CPU, before and after.
            pg = BackendCpu((database,), postmaster, admin)
            pg.sample()
            cpu_started, wall_started = time.process_time(), time.perf_counter()
            for environ in environs[warmup:]:
                caller(environ)
            cpu_s, wall_s = time.process_time() - cpu_started, time.perf_counter() - wall_started
            pg.sample()
            pg_s = sum(pg.by_client().values())
            costs.append(
                RouteCost(
                    route,
                    count,
                    cpu_s / count * 1000,
                    pg_s / count * 1000,
                    wall_s / count * 1000,
                    dict(caller.statuses),
                    caller.sent / count,
                )
            )
    return costs


# --- report ----------------------------------------------------------------------------------


def render(
    options: bench.Options,
    runs: list[Indexed],
    api: list[RouteCost],
    api_database: str,
    cpu_checks: list[float],
    command: str,
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {when} - sizing (`{command}`)",
        "",
        f"Machine: {bench.machine_facts()}",
        "",
        "CPU check (a fixed pure-Python workload, lower is faster): "
        + " / ".join(f"{ms:.0f} ms" for ms in cpu_checks)
        + " before / after.",
        "",
        f"{options.nft_tokens:,} NFTs in {bench.NFT_COLLECTIONS} collections, "
        f"{bench.FT_CONTRACTS} FTs, {bench.SFT_CONTRACTS}x{bench.SFT_TOKENS} SFTs; one worker "
        "process and beat at the product's defaults (no setting changed besides logging and "
        "ports).",
    ]
    for run in runs:
        lines += ["", *render_run(run)]
    if api:
        lines += ["", *render_api(api, api_database)]
    return "\n".join(lines) + "\n"


def render_run(run: Indexed) -> list[str]:
    hosts, latency, jitter = bench.SCENARIOS[run.scenario]
    per = max(run.tokens, 1)
    loads = run.loads or [float("nan")]
    wal_whose = (
        " (the run's own server)"
        if run.private
        else " written by the whole shared server meanwhile (others' writes included)"
    )
    lines = [
        f"**Scenario `{run.scenario}`** ({hosts} metadata host(s) answering in {latency} ms "
        f"+- {jitter} ms): {run.tokens:,} tokens, {run.contracts} contracts, "
        f"{run.seconds:.1f} s from the processes' start to every job settled "
        f"({run.tokens / max(run.seconds, 1e-9):.0f} tokens/s wall clock), {run.not_done} "
        f"token jobs not done. Machine during the run: load average (1 min) "
        f"{min(loads):.1f}-{max(loads):.1f}, mean {sum(loads) / len(loads):.1f}; cores "
        f"{run.busy_share:.0%} busy (every process on the machine).",
        "",
        "| per token | value |",
        "|---|---|",
    ]
    for name, seconds in sorted(run.process_cpu_s.items()):
        lines.append(
            f"| CPU, {name} process (its start included) | {seconds / per * 1000:.2f} ms "
            f"({seconds:.1f} s) |"
        )
    counted = 0.0
    for (database, client), seconds in sorted(run.postgres_cpu_s.items()):
        which = "chain database" if "chain" in database else "our database"
        if database == "the whole server":
            which = "the run's own server"
        label = CLIENTS.get(client, client or "?")
        if client not in NOT_COUNTED:
            counted += seconds
        # The chain monitor polls on a timer: its reads cost per second more than per token.
        rate = f"; {seconds / run.seconds * 1000:.0f} ms per second" if "chain" in client else ""
        lines.append(
            f"| CPU, Postgres, {which}, {label} | {seconds / per * 1000:.2f} ms "
            f"({seconds:.1f} s{rate}) |"
        )
    lines += [
        f"| **CPU, Postgres, counted** ({run.backends} processes seen, "
        f"{run.backends_ended} ended during the run) | **{counted / per * 1000:.2f} ms** |",
        f"| rows written (inserted + updated + deleted) | "
        f"{sum(v for k, v in run.writes.items() if k != 'commits') / per:.1f} "
        f"({', '.join(f'{k} {v:,}' for k, v in run.writes.items())}) |",
        f"| WAL{wal_whose} | {run.wal_bytes / per / 1024:.1f} KiB ({run.wal_bytes / 1e6:.0f} MB) |",
        f"| database size | {run.database_bytes / per / 1024:.2f} KiB "
        f"({run.database_bytes / 1e6:.0f} MB in all) |",
        "",
        "| write rate | value |",
        "|---|---|",
        f"| rows written per second | {run.rows_written() / max(run.seconds, 1e-9):,.0f} |",
        f"| commits per second | {run.writes.get('commits', 0) / max(run.seconds, 1e-9):,.0f} |",
        f"| WAL per second{' (whole server)' if not run.private else ''} "
        f"| {run.wal_bytes / max(run.seconds, 1e-9) / 1e6:.1f} MB |",
        "",
        "| table | rows | rows/token | bytes/token (with indexes, TOAST) | of which indexes |",
        "|---|---|---|---|---|",
    ]
    for name, rows, total, indexes in run.tables:
        if total <= 16384 and rows == 0:
            continue
        lines.append(
            f"| {name} | {rows:,} | {rows / per:.2f} | {total / per:,.0f} | {indexes / per:,.0f} |"
        )
    return lines


def render_api(api: list[RouteCost], database: str) -> list[str]:
    lines = [
        f"**API CPU per request**, in process (the WSGI app called directly, one request after "
        f"the other, `Accept-Encoding: gzip`), on `{database}` (bench/api/seed.py's 1,000,000 "
        f"tokens), {api[0].requests} requests per route after a warm-up:",
        "",
        "| route | app CPU/request | Postgres CPU/request | wall/request | bytes | statuses |",
        "|---|---|---|---|---|---|",
    ]
    for cost in api:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(cost.statuses.items()))
        lines.append(
            f"| {cost.route} | {cost.app_cpu_ms:.2f} ms | {cost.postgres_cpu_ms:.2f} ms "
            f"| {cost.wall_ms:.2f} ms | {cost.bytes_per_request:,.0f} | {statuses} |"
        )
    return lines


# --- a Postgres server of the run's own ---------------------------------------------------


@contextmanager
def private_postgres(bindir: Path) -> Iterator[str]:
    """A new Postgres cluster (initdb's defaults: the packaged server's `shared_buffers`,
    `max_wal_size` and fsync) on a free loopback port, removed after; yields its server URL.

    On a shared server the WAL position moves with everyone's writes (other tests creating
    databases write tens of MB a second here), so WAL per token is measured on a server of the
    run's own. Run as root, the server runs as the `postgres` user (initdb refuses root).
    """
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def tool(name: str, *args: str) -> None:
        subprocess.run(
            [*as_postgres, str(bindir / name), *args], stdout=subprocess.DEVNULL, check=True
        )

    with tempfile.TemporaryDirectory(prefix="tm-sizing-pg-") as tmp:
        data = str(Path(tmp) / "data")
        if as_postgres:
            shutil.chown(tmp, "postgres")
        port = free_port()
        tool(
            "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-instructions"
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={tmp}"
        tool("pg_ctl", "-D", data, "-o", options, "-w", "-l", str(Path(tmp) / "log"), "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}"
        finally:
            tool("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")


@contextmanager
def postgres_server(private: bool) -> Iterator[None]:
    """Point the runs (bench/run.py's admin URL, bench/webhook_latency.py's databases) at a
    private server, or leave them on the machine's."""
    if not private:
        yield
        return
    with psycopg.connect(SHARED_ADMIN_URL) as conn:
        (major,) = one(conn, "SELECT current_setting('server_version_num')::int / 10000")
    bindir = Path(f"/usr/lib/postgresql/{major}/bin")  # Debian's layout
    if not (bindir / "initdb").exists():
        raise SystemExit(f"--private-postgres needs the server's initdb in {bindir}")
    with private_postgres(bindir) as server:
        saved = bench.ADMIN_URL, webhook_latency.SERVER
        bench.ADMIN_URL = f"{server}/postgres"
        webhook_latency.SERVER = server.replace("postgresql://", "postgresql+psycopg://")
        try:
            yield
        finally:
            bench.ADMIN_URL, webhook_latency.SERVER = saved


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenario",
        choices=[*bench.SCENARIOS, "both"],
        default="one-host",
        help="one-host: ~1 ms; four-hosts: 100 +- 20 ms; default: one-host",
    )
    parser.add_argument("--nft-tokens", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for indexing")
    parser.add_argument(
        "--private-postgres",
        action="store_true",
        help="index on a Postgres server started for the run (initdb): its WAL and every one "
        "of its processes are the run's; the API is still measured on the machine's server",
    )
    parser.add_argument("--skip-api", action="store_true", help="no API measurement")
    parser.add_argument("--api-database", default=API_DATABASE, help="read only, never changed")
    parser.add_argument("--api-requests", type=int, default=1000, help="per route")
    parser.add_argument("--write", type=Path, help="append the report to this file")
    args = parser.parse_args(argv)
    names = list(bench.SCENARIOS) if args.scenario == "both" else [args.scenario]
    command = "bench/sizing.py " + " ".join(argv if argv is not None else sys.argv[1:])
    runs = []
    options = None
    cpu_checks = [bench.cpu_check_ms()]
    with bench.one_run_at_a_time():
        with postgres_server(args.private_postgres):
            for name in names:
                options = scenario_options(name, args.nft_tokens)
                runs.append(index_once(options, args.timeout, args.private_postgres))
        api = [] if args.skip_api else measure_api(args.api_database, args.api_requests, 50)
    cpu_checks.append(bench.cpu_check_ms())
    assert options is not None
    report = render(options, runs, api, args.api_database, cpu_checks, command.strip())
    print(report, flush=True)
    if args.write:
        with args.write.open("a", encoding="utf-8") as out:
            out.write("\n" + report)
        print(f"appended to {args.write}")
    return 0


def scenario_options(name: str, nft_tokens: int) -> bench.Options:
    """bench/run.py's options for `name` at the product's defaults, indexing only."""
    hosts, latency_ms, jitter_ms = bench.SCENARIOS[name]
    return bench.Options(
        nft_tokens=nft_tokens,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        workers=1,
        worker_concurrency=0,
        host_concurrency=None,
        api_workers=2,
        api_threads=4,
        duration="0s",
        connections=0,
        timeout_s=0,
        skip_api=True,
        write=None,
        label="sizing",
        scenario_name=name,
        hosts=hosts,
    )


if __name__ == "__main__":
    sys.exit(main())
