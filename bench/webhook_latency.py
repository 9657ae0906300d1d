"""Commit -> webhook delivery latency with the Procfile's real `worker` and `beat` processes
(docs/webhooks.md#delivery). Loopback only; fresh databases and a Redis DB number of its
own, dropped and flushed after.

    .venv/bin/python bench/webhook_latency.py                    # 200 changes, 0.1 s apart
    .venv/bin/python bench/webhook_latency.py --changes 50 --interval 0.5

It migrates a fresh database (and an empty Stacks API database: the worker wants one; the
chain monitor finds no block in it), starts the Procfile's `worker` and `beat` at their
defaults (only what loopback needs is changed: METADATA_FETCH_ALLOW_PRIVATE_NETWORKS=true,
and quieter logs), serves a receiver on 127.0.0.1 that verifies every POST's signature
(`shared.webhooks.signing.verify`) and notes when each entry id arrived, creates a
subscription with `shared.webhooks.subscriptions.create_subscription`, waits for a warm-up
entry to arrive, then commits `--changes` transactions of one entry each through
`shared.changes.record`, `--interval` seconds apart, and times each entry from the return of
its commit to its arrival. Beat's dispatcher runs every 2 s (WEBHOOKS_DISPATCH_INTERVAL_S):
that schedule, not the POST, is most of the latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from alembic import command  # noqa: E402 - after the path set-up above
from alembic.config import Config  # noqa: E402
from run import cpu_check_ms, machine_facts, redis_db  # noqa: E402 - bench/run.py
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402
from support.processes import (  # noqa: E402
    Running,
    free_port,
    process_env,
    procfile_command,
    running,
    wait_until,
)

from devnet import chain_db  # noqa: E402
from shared.changes import entry, record  # noqa: E402
from shared.db import make_engine, session_scope  # noqa: E402
from shared.models import ChangeKind  # noqa: E402
from shared.webhooks.signing import HEADER, verify  # noqa: E402
from shared.webhooks.subscriptions import create_subscription  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
# The test runs' claim on a Redis DB number (tests/conftest.py): held, they leave it alone.
SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 - a throwaway receiver's
PRINCIPAL = "SP1BENCH.webhooks"
SETTINGS = {"METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true"}
QUIET = {"LOG_LEVEL": "WARNING", "WORKER_METRICS_PORT": "0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--wait", type=float, default=30.0, help="after the last commit, at most")
    args = parser.parse_args()
    cpu_before = cpu_check_ms()
    with databases() as (url, chain_url), redis_db() as redis_url:
        result = run(url, chain_url, redis_url, args)
    result.cpu_check_ms = [cpu_before, cpu_check_ms()]
    report(args, result)


@contextmanager
def databases() -> Iterator[tuple[str, str]]:
    """A migrated database and an empty Stacks API database, dropped after."""
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:8]
    names = [f"tm_bench_webhooks_{suffix}", f"tm_bench_webhooks_chain_{suffix}"]
    try:
        for name in names:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        url, chain_url = (f"{SERVER}/{name}" for name in names)
        config = Config(str(ROOT / "alembic.ini"))
        config.set_main_option("sqlalchemy.url", url)
        command.upgrade(config, "head")
        with chain_db.connect(chain_url, autocommit=True) as conn:
            chain_db.create_schema(conn)
        yield url, chain_url
    finally:
        for name in names:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Receiver:
    """Entry id -> arrival times (perf_counter) of the accepted POSTs, and each POST."""

    arrivals: dict[int, list[float]] = field(default_factory=dict)
    # (first id, entries, wall-clock arrival) of each POST
    posts: list[tuple[int, int, float]] = field(default_factory=list)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived, wall = time.perf_counter(), time.time()
                signed = verify(SECRET, self.headers.get(HEADER, ""), body)
                if signed:
                    ids = [int(change["id"]) for change in json.loads(body)["changes"]]
                    with receiver.lock:
                        for entry_id in ids:
                            receiver.arrivals.setdefault(entry_id, []).append(arrived)
                        receiver.posts.append((ids[0], len(ids), wall))
                else:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                self.send_response(204 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server


@dataclass
class Result:
    commits: dict[int, float]
    receiver: Receiver
    attempts: list[tuple[int, float]]  # (first id, attempted_at) of each delivery
    cpu_s: dict[str, float]
    load: tuple[float, float, float]
    cpu_check_ms: list[float] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, chain_url: str, redis_url: str, args: argparse.Namespace) -> Result:
    engine = make_engine(url, pool_size=2)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    receiver = Receiver()
    server = receiver.serve()
    hook = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        with tempfile.TemporaryDirectory(prefix="tm-bench-webhooks-") as tmp:
            env = process_env(
                {
                    "DATABASE_URL": url,
                    "REDIS_URL": redis_url,
                    "STACKS_API_DATABASE_URL": chain_url,
                    "STACKS_NODE_RPC_URL": f"http://127.0.0.1:{free_port()}",  # never called
                    "CELERY_BEAT_SCHEDULE": str(Path(tmp) / "beat-schedule"),
                    **SETTINGS,
                    **QUIET,
                }
            )
            with (
                running("worker", procfile_command("worker"), env, Path(tmp)) as worker,
                running("beat", procfile_command("beat"), env, Path(tmp)) as beat,
            ):
                try:
                    return measure(sessions, receiver, hook, (worker, beat), args)
                except BaseException:
                    print(worker.log_tail(), beat.log_tail(), sep="\n", file=sys.stderr)
                    raise
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()


def measure(
    sessions: sessionmaker[Session],
    receiver: Receiver,
    hook: str,
    processes: tuple[Running, Running],
    args: argparse.Namespace,
) -> Result:
    def dead() -> str | None:
        gone = [p for p in processes if p.process.poll() is not None]
        return "\n".join(p.log_tail() for p in gone) or None

    with session_scope(sessions) as session:
        subscription = create_subscription(session, hook, SECRET)
    warm_up = commit_one(sessions, 0)
    wait_until(lambda: warm_up in receiver.arrivals, 120, "the warm-up entry", 0.05, dead)
    cpu_before = {p.name: cpu_seconds(p.process.pid) for p in processes}
    commits = {}
    for n in range(args.changes):
        commits[commit_one(sessions, n + 1)] = time.perf_counter()
        time.sleep(args.interval)  # the pace of the writer, not synchronisation
    newest = max(commits)
    try:
        wait_until(lambda: newest in receiver.arrivals, args.wait, "the last entry", 0.05, dead)
    except AssertionError as exc:
        print(f"incomplete: {exc}", file=sys.stderr)
    cpu_s = {p.name: cpu_seconds(p.process.pid) - cpu_before[p.name] for p in processes}
    with session_scope(sessions) as session:
        attempts = [
            (int(row.first_id), row.attempted_at.timestamp())
            for row in session.execute(
                text(
                    "SELECT first_id, attempted_at FROM webhook_deliveries "
                    "WHERE subscription_id = :id AND first_id > :warm_up ORDER BY id"
                ),
                {"id": subscription["id"], "warm_up": warm_up},
            )
        ]
    return Result(commits, receiver, attempts, cpu_s, os.getloadavg())


def commit_one(sessions: sessionmaker[Session], number: int) -> int:
    """One transaction of one entry; its id (this is the only writer)."""
    with sessions() as session:
        record(session, [entry(ChangeKind.TOKEN_ADDED, PRINCIPAL, number)])
        session.commit()
        return int(session.execute(text("SELECT max(id) FROM changes")).scalar_one())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(args: argparse.Namespace, result: Result) -> None:
    commits, receiver = result.commits, result.receiver
    latencies = [
        (receiver.arrivals[i][0] - committed) * 1000
        for i, committed in commits.items()
        if i in receiver.arrivals
    ]
    duplicates = sum(len(receiver.arrivals[i]) - 1 for i in commits if i in receiver.arrivals)
    sizes = [size for first, size, _ in receiver.posts if first in commits]
    arrived_at = {first: wall for first, _, wall in receiver.posts}
    post_ms = [
        (arrived_at[first] - attempted) * 1000
        for first, attempted in result.attempts
        if first in arrived_at
    ]
    print(f"machine: {machine_facts()}")
    before, after = result.cpu_check_ms
    print(f"CPU check: {before:.0f} ms / {after:.0f} ms before / after the run")
    print("load average at the end: " + ", ".join(f"{x:.2f}" for x in result.load))
    print(f"settings changed: {', '.join(f'{k}={v}' for k, v in SETTINGS.items())}")
    print(f"changes {len(commits)}, one entry each, {args.interval} s apart")
    print(
        f"received {len(latencies)}, missing {len(commits) - len(latencies)}, "
        f"duplicates {duplicates}, bad signatures {receiver.bad_signatures}"
    )
    if latencies:
        print(
            f"commit -> received: p50 {statistics.median(latencies):.0f} ms, "
            f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms, "
            f"min {min(latencies):.0f} ms, mean {statistics.mean(latencies):.0f} ms"
        )
    if sizes:
        print(
            f"POSTs {len(sizes)}: {statistics.mean(sizes):.1f} entries each on average "
            f"(max {max(sizes)})"
        )
    if post_ms:
        print(
            f"delivery's own time (attempted_at -> arrival): p50 "
            f"{statistics.median(post_ms):.1f} ms, max {max(post_ms):.1f} ms"
        )
    print("CPU during the changes: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.cpu_s.items()))
    hist = Counter(int(ms // 500) for ms in latencies)
    print(
        "latency histogram (500 ms buckets): "
        + ", ".join(f"{b * 500}-{b * 500 + 500} ms: {hist[b]}" for b in sorted(hist))
    )


if __name__ == "__main__":
    main()
