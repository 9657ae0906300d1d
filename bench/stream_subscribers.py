"""The live stream with many idle subscribers (docs/change-feed.md#stream): the `stream`
process's memory with 1,000 open streams, and how long a committed change takes to reach them.
Loopback Postgres only; a fresh database, dropped after.

    .venv/bin/python bench/stream_subscribers.py                      # 1,000 subscribers
    .venv/bin/python bench/stream_subscribers.py --subscribers 2000 --changes 50

It starts the Procfile's `stream` process on a free loopback port, opens the subscribers
(aiohttp client, one connection each, all in this process), reads the process's VmRSS from
/proc before and after, then commits `--changes` transactions of one entry each through
`shared.changes.record`, `--interval` seconds apart, and times each event from the start of
its commit to its arrival at every subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402 - after the path set-up above
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from shared.changes import entry, record  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.embedded.ports import free_port  # noqa: E402
from shared.models import ChangeKind  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PATH = "/metadata/v1/changes/stream"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    name = f"tm_bench_stream_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = f"{SERVER}/{name}"
        config = Config(str(ROOT / "alembic.ini"))
        config.set_main_option("sqlalchemy.url", url)
        command.upgrade(config, "head")
        run(url, args)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def run(url: str, args: argparse.Namespace) -> None:
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "DATABASE_URL": url,
        "STREAM_HOST": "127.0.0.1",
        "STREAM_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.stream"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            asyncio.run(measure(f"http://127.0.0.1:{port}", process.pid, url, args))
        finally:
            process.terminate()
            process.wait(30)
            if process.returncode not in (0, -15):
                log.seek(0)
                print(log.read().decode(errors="replace"), file=sys.stderr)


async def measure(base: str, pid: int, url: str, args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=30)
    received: dict[int, list[float]] = defaultdict(list)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        await wait_for_health(client, base)
        await asyncio.sleep(1)
        before = rss_mb(pid)
        opened = time.perf_counter()
        tasks = [
            asyncio.create_task(subscribe(client, base + PATH, received))
            for _ in range(args.subscribers)
        ]
        while await gauge(client, base) < args.subscribers:
            await asyncio.sleep(0.2)
        opening_s = time.perf_counter() - opened
        await asyncio.sleep(2)  # idle
        idle = rss_mb(pid)
        commits = await asyncio.to_thread(commit_changes, url, args.changes, args.interval)
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline and any(
            len(received[i]) < args.subscribers for i in commits
        ):
            await asyncio.sleep(0.1)
        after = rss_mb(pid)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    report(args, before, idle, after, opening_s, commits, received)


async def wait_for_health(client: aiohttp.ClientSession, base: str) -> None:
    deadline = time.perf_counter() + 60
    while True:
        try:
            async with client.get(base + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.perf_counter() > deadline:
            raise RuntimeError("the stream process did not start")
        await asyncio.sleep(0.2)


async def gauge(client: aiohttp.ClientSession, base: str) -> float:
    async with client.get(base + "/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("token_metadata_stream_subscribers "):
                return float(line.split()[1])
    return 0.0


async def subscribe(
    client: aiohttp.ClientSession, url: str, received: dict[int, list[float]]
) -> None:
    async with client.get(url) as response:
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"id: "):
                received[int(line[4:])].append(time.perf_counter())


def commit_changes(url: str, count: int, interval: float) -> dict[int, float]:
    """Commit `count` one-entry transactions; each entry's id and when its commit began."""
    engine = make_engine(url, pool_size=1)
    sessions = sessionmaker(bind=engine)
    started: dict[int, float] = {}
    try:
        for n in range(count):
            with sessions() as session:
                record(session, [entry(ChangeKind.TOKEN_ADDED, "SP1BENCH.stream", n + 1)])
                t0 = time.perf_counter()
                session.commit()
                new_id = session.execute(text("SELECT max(id) FROM changes")).scalar_one()
            started[int(new_id)] = t0
            time.sleep(interval)
    finally:
        engine.dispose()
    return started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(
    args: argparse.Namespace,
    before: float,
    idle: float,
    after: float,
    opening_s: float,
    commits: dict[int, float],
    received: dict[int, list[float]],
) -> None:
    per_event = [(t - commits[i]) * 1000 for i in commits for t in received[i]]
    to_all = [
        (max(received[i]) - commits[i]) * 1000
        for i in commits
        if len(received[i]) == args.subscribers
    ]
    missing = sum(args.subscribers - len(received[i]) for i in commits)
    print(f"subscribers {args.subscribers}, opened in {opening_s:.1f} s")
    print(f"stream process RSS: {before:.1f} MB started, {idle:.1f} MB with the subscribers idle")
    each = (idle - before) * 1024 / args.subscribers
    print(f"  ({each:.1f} KB a subscriber), {after:.1f} MB after the changes")
    print(f"changes {len(commits)}, {args.interval}s apart; events missing: {missing}")
    print(
        f"commit -> one subscriber: p50 {statistics.median(per_event):.1f} ms, "
        f"p99 {percentile(per_event, 0.99):.1f} ms"
    )
    print(
        f"commit -> all subscribers: p50 {statistics.median(to_all):.1f} ms, "
        f"p99 {percentile(to_all, 0.99):.1f} ms, max {max(to_all):.1f} ms"
    )


if __name__ == "__main__":
    main()
