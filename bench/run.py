"""The end-to-end benchmark: one command, loopback only, the product's default settings.

Starts the simulated Stacks network with a generated chain (3 NFT collections of equal size
totalling 10,000 tokens, 5 FT contracts, 2 SFT contracts with 50 tokens each), starts the
Procfile's `worker` (one or more), `beat` and `api` processes against fresh databases, waits
until every job has finished, then measures the API with wrk, a constant-body WSGI app
under the same server settings (the floor any route can reach on this machine) and the same
app under gunicorn 2x4 (the yardstick Hiro's service was measured against: about 20 % of it).

Two scenarios, both run by default, one after the other:
- `one-host`: every document on one metadata host answering in ~1 ms;
- `four-hosts`: each NFT collection on a host of its own, FTs and SFTs on a fourth, every host
  answering in 80-120 ms (100 +- 20).

    .venv/bin/python bench/run.py                               # both, at the defaults
    .venv/bin/python bench/run.py --scenario four-hosts --skip-api
    .venv/bin/python bench/run.py --workers 2 --nft-tokens 20000 --write bench/RESULTS.md
    .venv/bin/python bench/run.py --host-concurrency 256       # a setting changed: reported

Every setting the run changes from the product's defaults is listed in its report. Reports
tokens per second end to end, the time of each stage, CPU and peak RSS per process, what the
per-host caps allow, and requests/s with p50/p99 latency for `GET /nft/...`, `GET /ft/...`,
`GET /ft?limit=60` and `/search` with 50 ids.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402
import redis  # noqa: E402
from support.processes import (  # noqa: E402
    Running,
    child_pids,
    free_port,
    process_env,
    procfile_command,
    running,
    wait_until,
)

LOCK_PATH = Path(tempfile.gettempdir()) / "stacks-token-metadata-bench.lock"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
FT_CONTRACTS = 5
SFT_CONTRACTS = 2
SFT_TOKENS = 50
NFT_COLLECTIONS = 3  # of equal size
# The product's default METADATA_HOST_CONCURRENCY_LIMIT (shared.config), for the cap bound.
DEFAULT_HOST_CONCURRENCY = 16
# Where the four-hosts scenario puts its documents: one loopback address per host.
NFT_HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
FUNGIBLE_HOST = "127.0.0.5"
SCENARIOS = {  # name -> (hosts, latency ms, jitter ms)
    "one-host": (1, 1, 0),
    "four-hosts": (4, 100, 20),
}


@dataclass
class Options:
    nft_tokens: int
    latency_ms: int
    jitter_ms: int
    workers: int
    worker_concurrency: int
    host_concurrency: int | None  # None: the product's default
    api_workers: int
    api_threads: int
    duration: str
    connections: int
    timeout_s: float
    skip_api: bool
    write: Path | None
    label: str
    images: int = 0  # side of the token images in pixels; 0: image cache off
    scenario_name: str = "one-host"
    hosts: int = 1

    def changed_settings(self) -> dict[str, str]:
        """Settings this run gives a value other than the product's default."""
        changed = {}
        if self.host_concurrency is not None:
            changed["METADATA_HOST_CONCURRENCY_LIMIT"] = str(self.host_concurrency)
        if self.worker_concurrency:
            changed["WORKER_CONCURRENCY"] = str(self.worker_concurrency)
        if (self.api_workers, self.api_threads) != (2, 4):
            changed["API_WORKERS"] = str(self.api_workers)
            changed["API_THREADS"] = str(self.api_threads)
        if self.images:
            changed["IMAGE_CACHE_PROCESSOR_ENABLED"] = "true"
        return changed


@dataclass
class Results:
    options: Options
    tokens: int = 0
    contracts: int = 0
    total_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    api: list[dict[str, Any]] = field(default_factory=list)
    collections: list[tuple[str, float, float]] = field(default_factory=list)
    collection_pace: dict[str, list[int]] = field(default_factory=dict)
    done_per_second: list[int] = field(default_factory=list)
    # The same server settings serving a constant body: what no route can beat here.
    floor: dict[str, Any] = field(default_factory=dict)
    yardstick: dict[str, Any] = field(default_factory=dict)
    images: dict[str, Any] = field(default_factory=dict)
    # The VM's speed at the time, before and after the run (see `cpu_check_ms`).
    cpu_check_ms: list[float] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    runs = parse_args(argv)
    if not runs[0].skip_api and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk), or use --skip-api")
    # SIGTERM cleans up like Ctrl-C: processes stopped, databases dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with one_run_at_a_time():
        for options in runs:
            results = Results(options)
            with tempfile.TemporaryDirectory(prefix="tm-bench-") as tmp:
                results.cpu_check_ms.append(cpu_check_ms())
                run(options, results, Path(tmp))
                results.cpu_check_ms.append(cpu_check_ms())
            report = render(results)
            print(report, flush=True)
            if options.write:
                with options.write.open("a", encoding="utf-8") as out:
                    out.write("\n" + report)
                print(f"appended to {options.write}")
    return 0


@contextmanager
def one_run_at_a_time() -> Iterator[None]:
    """Two runs would share the Redis database and each other's CPU: refuse the second."""
    with open(LOCK_PATH, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another benchmark is running ({LOCK_PATH} is locked)") from None
        yield


def parse_args(argv: Sequence[str] | None) -> list[Options]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenario", choices=[*SCENARIOS, "both"], default="both", help="default: both"
    )
    parser.add_argument("--nft-tokens", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, help="default: the scenario's (1 or 100)")
    parser.add_argument("--jitter-ms", type=int, help="default: the scenario's (0 or 20)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--worker-concurrency", type=int, default=0, help="0: the Procfile's")
    parser.add_argument(
        "--host-concurrency",
        type=int,
        help="METADATA_HOST_CONCURRENCY_LIMIT (default: the product's, 16)",
    )
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--api-threads", type=int, default=4)
    parser.add_argument("--duration", default="15s", help="wrk duration per route")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for indexing")
    parser.add_argument("--skip-api", action="store_true", help="index only, no wrk")
    parser.add_argument("--write", type=Path, help="append the result table to this file")
    parser.add_argument("--label", default="", help="a note for the result table")
    parser.add_argument(
        "--scenario-only",
        type=Path,
        metavar="FILE",
        help="write the scenario JSON to FILE and exit (for DEVNET_SCENARIO=FILE make run)",
    )
    parser.add_argument(
        "--images",
        type=int,
        default=0,
        metavar="PX",
        help="enable the image cache; every token image is a PX x PX PNG (e.g. 512)",
    )
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    runs = [_options(args, name) for name in names]
    for later in runs[1:]:  # the API is measured once, after the first scenario
        later.skip_api = True
    if args.scenario_only:
        args.scenario_only.parent.mkdir(parents=True, exist_ok=True)
        args.scenario_only.write_text(json.dumps(scenario(runs[0]), indent=1))
        raise SystemExit(f"wrote {args.scenario_only} ({runs[0].scenario_name})")
    return runs


def _options(args: argparse.Namespace, name: str) -> Options:
    hosts, latency_ms, jitter_ms = SCENARIOS[name]
    return Options(
        nft_tokens=args.nft_tokens,
        latency_ms=latency_ms if args.latency_ms is None else args.latency_ms,
        jitter_ms=jitter_ms if args.jitter_ms is None else args.jitter_ms,
        workers=args.workers,
        worker_concurrency=args.worker_concurrency,
        host_concurrency=args.host_concurrency,
        api_workers=args.api_workers,
        api_threads=args.api_threads,
        duration=args.duration,
        connections=args.connections,
        timeout_s=args.timeout,
        skip_api=args.skip_api,
        write=args.write,
        label=args.label,
        images=args.images,
        scenario_name=name,
        hosts=hosts,
    )


def nft_sizes(options: Options) -> list[int]:
    sizes = [options.nft_tokens // NFT_COLLECTIONS] * NFT_COLLECTIONS
    sizes[0] += options.nft_tokens - sum(sizes)
    return sizes


def scenario(options: Options) -> dict[str, Any]:
    contracts: list[dict[str, Any]] = []
    for i, size in enumerate(nft_sizes(options), start=1):
        contracts.append(
            {
                "name": f"bench-nft-{i}",
                "deployer_seed": f"bench/nft-{i}",
                "kind": "sip-009",
                "block_height": 2 + i,
                "last_token_id": size,
                "collection": {"title": f"Bench Collection {i}", "description": "benchmark"},
            }
        )
    for i in range(1, FT_CONTRACTS + 1):
        contracts.append(
            {
                "name": f"bench-ft-{i}",
                "deployer_seed": f"bench/ft-{i}",
                "kind": "sip-010",
                "block_height": 2,
                "token": {
                    "name": f"Bench Token {i}",
                    "symbol": f"BT{i}",
                    "decimals": 6,
                    "total_supply": "1000000000000",
                },
            }
        )
    for i in range(1, SFT_CONTRACTS + 1):
        contracts.append(
            {
                "name": f"bench-sft-{i}",
                "deployer_seed": f"bench/sft-{i}",
                "kind": "sip-013",
                "block_height": 3,
                "tokens": [
                    {"id": n, "decimals": 0, "total_supply": 1000} for n in range(1, SFT_TOKENS + 1)
                ],
            }
        )
    chain: dict[str, Any] = {
        "network": "mainnet",
        "chain_tip_height": 8,
        "metadata_latency_ms": options.latency_ms,
        "metadata_jitter_ms": options.jitter_ms,
        "image_size_px": max(options.images, 1),
        "contracts": contracts,
    }
    if options.hosts > 1:
        for contract in contracts:
            nft = contract["kind"] == "sip-009"
            nft_index = int(contract["name"].rsplit("-", 1)[1]) - 1 if nft else -1
            contract["metadata_host"] = NFT_HOSTS[nft_index] if nft else FUNGIBLE_HOST
        latency = {"latency_ms": options.latency_ms, "jitter_ms": options.jitter_ms}
        chain["metadata_hosts"] = {host: latency for host in (*NFT_HOSTS, FUNGIBLE_HOST)}
    return chain


def cap_bound(options: Options) -> float:
    """Tokens/s the per-host caps allow at the mean latency, the busiest host deciding: each
    host serves at most `cap` fetches per mean latency (node calls and storage are free)."""
    cap = options.host_concurrency or DEFAULT_HOST_CONCURRENCY
    per_host_s = cap / (max(options.latency_ms, 1) / 1000)
    if options.hosts == 1:
        return per_host_s
    busiest = max(max(nft_sizes(options)), FT_CONTRACTS + SFT_CONTRACTS * SFT_TOKENS)
    return expected_tokens(options) / (busiest / per_host_s)


# Logging and ports only: what every run sets whatever the scenario (reported as such).
QUIET_SETTINGS = {"API_ACCESS_LOG": "/dev/null", "WORKER_METRICS_PORT": "0", "LOG_LEVEL": "WARNING"}


def expected_tokens(options: Options) -> int:
    return options.nft_tokens + FT_CONTRACTS + SFT_CONTRACTS * SFT_TOKENS


def run(options: Options, results: Results, tmp: Path) -> None:
    suffix = f"{os.getpid()}"
    db_name, chain_name = f"tm_bench_{suffix}", f"stacks_api_bench_{suffix}"
    database_url = f"postgresql://postgres@127.0.0.1:5432/{db_name}"
    chain_url = f"postgresql://postgres@127.0.0.1:5432/{chain_name}"
    scenario_path = tmp / "scenario.json"
    scenario_path.write_text(json.dumps(scenario(options)))
    node_port, metadata_port, api_port = free_port(), free_port(), free_port()
    with ExitStack() as stack:
        stack.callback(drop_databases, db_name, chain_name)
        redis_url = stack.enter_context(redis_db())
        env = process_env(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "STACKS_API_DATABASE_URL": chain_url,
                "STACKS_NODE_RPC_URL": f"http://127.0.0.1:{node_port}",
                "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
                "CELERY_BEAT_SCHEDULE": str(tmp / "beat-schedule"),
                **QUIET_SETTINGS,
                "API_HOST": "127.0.0.1",
                "API_PORT": str(api_port),
                **options.changed_settings(),
            }
        )
        if options.images:
            env["IMAGE_CACHE_LOCAL_DIR"] = str(tmp / "images")
        subprocess.run(
            [sys.executable, "-m", "shared.manage", "ensure-database"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        alembic = Path(sys.executable).with_name("alembic")
        subprocess.run([str(alembic), "upgrade", "head"], cwd=ROOT, env=env, check=True)
        devnet = stack.enter_context(
            running(
                "devnet",
                f"{sys.executable} -m devnet serve --scenario {scenario_path} "
                f"--node-port {node_port} --metadata-port {metadata_port} "
                f"--database-url {chain_url}",
                env,
                tmp,
            )
        )
        wait_until(
            lambda: "stacks node rpc" in devnet.log_path.read_text(errors="replace"),
            120,
            "the simulated network",
            alive=lambda: devnet.log_tail() if devnet.process.poll() is not None else None,
        )
        processes = {"devnet": devnet}
        sampler = stack.enter_context(rss_sampler(processes))
        start = time.time()
        for n in range(options.workers):
            name = f"worker-{n + 1}"
            processes[name] = stack.enter_context(
                running(name, procfile_command("worker"), env, tmp)
            )
        processes["beat"] = stack.enter_context(running("beat", procfile_command("beat"), env, tmp))
        processes["api"] = stack.enter_context(running("api", procfile_command("api"), env, tmp))
        with psycopg.connect(database_url, autocommit=True) as conn:
            wait_until(
                lambda: indexing_finished(conn, options),
                options.timeout_s,
                "every job to finish",
                interval=0.25,
                alive=lambda: dead_process(processes),
            )
            results.total_s = time.time() - start
            sampler.sample()
            results.cpu_s = dict(sampler.cpu_s)
            collect(conn, start, results)
            if options.images:
                collect_images(conn, results, tmp / "images")
        results.rss_mb = dict(sampler.peak_mb)
        if not options.skip_api:
            results.api = measure_api(options, f"http://127.0.0.1:{api_port}", database_url, tmp)
            api_command = procfile_command("api") + " bench.constant_app:app"
            results.floor = measure_floor(options, env, tmp, api_command, "floor")
            results.yardstick = measure_floor(options, env, tmp, GUNICORN_YARDSTICK, "yardstick")
        results.rss_mb.update(
            {k: max(v, results.rss_mb.get(k, 0.0)) for k, v in sampler.peak_mb.items()}
        )


# The key test runs and the other benchmarks claim a Redis DB number with (tests/conftest.py).
REDIS_LOCK_KEY = "stacks-token-metadata:test-run-lock"


@contextmanager
def redis_db() -> Iterator[str]:
    """A Redis DB number nobody holds, claimed as test runs claim theirs, flushed before and
    after: a fixed number would be flushed under another benchmark or test run using it."""
    owner = f"bench-{os.getpid()}-{random.getrandbits(32):08x}"
    for db in range(15, 0, -1):
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        if client.set(REDIS_LOCK_KEY, owner, nx=True, ex=3600):
            try:
                client.flushdb()  # leftovers of a crashed run whose claim expired
                client.set(REDIS_LOCK_KEY, owner, ex=3600)
                yield f"redis://127.0.0.1:6379/{db}"
            finally:
                client.flushdb()
                client.close()
            return
        client.close()
    raise SystemExit("no free Redis DB number (1-15)")


def indexing_finished(conn: psycopg.Connection[Any], options: Options) -> bool:
    row = conn.execute(
        """SELECT (SELECT count(*) FROM tokens),
                  (SELECT count(*) FROM jobs WHERE status IN ('pending', 'queued')),
                  (SELECT count(*) FROM smart_contracts)"""
    ).fetchone()
    assert row is not None
    tokens, unfinished, contracts = row
    finished = bool(
        tokens >= expected_tokens(options)
        and contracts >= NFT_COLLECTIONS + FT_CONTRACTS + SFT_CONTRACTS
        and unfinished == 0
    )
    if finished and options.images:
        images = conn.execute(
            """SELECT (SELECT count(*) FROM metadata WHERE image IS NOT NULL),
                      (SELECT count(*) FROM image_jobs),
                      (SELECT count(*) FROM image_jobs WHERE status IN ('pending', 'queued'))"""
        ).fetchone()
        assert images is not None
        with_image, image_jobs, images_unfinished = images
        finished = image_jobs >= with_image and images_unfinished == 0
    return finished


def collect(conn: psycopg.Connection[Any], start: float, results: Results) -> None:
    row = conn.execute(
        """SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM smart_contracts),
                  (SELECT extract(epoch FROM max(created_at)) FROM smart_contracts),
                  (SELECT extract(epoch FROM max(updated_at)) FROM jobs
                    WHERE smart_contract_id IS NOT NULL),
                  (SELECT extract(epoch FROM min(created_at)) FROM jobs WHERE token_id IS NOT NULL),
                  (SELECT extract(epoch FROM max(updated_at)) FROM jobs
                    WHERE token_id IS NOT NULL)"""
    ).fetchone()
    assert row is not None
    tokens, contracts, imported, contracts_done, first_token_job, tokens_done = row
    results.tokens, results.contracts = tokens, contracts
    results.stages = {
        "start -> every contract imported": float(imported) - start,
        "start -> every contract job done (tokens enumerated)": float(contracts_done) - start,
        "first token job -> last token done": float(tokens_done) - float(first_token_job),
        "start -> last token done": float(tokens_done) - start,
    }
    results.statuses = dict(
        conn.execute("SELECT status::text, count(*) FROM jobs GROUP BY 1 ORDER BY 1").fetchall()
    )
    # Token jobs finished in each second from the start: the pipeline filling, then its pace.
    per_second = dict(
        conn.execute(
            """SELECT floor(extract(epoch FROM updated_at) - %s)::int, count(*) FROM jobs
               WHERE token_id IS NOT NULL AND status = 'done' GROUP BY 1""",
            (start,),
        ).fetchall()
    )
    last = max(per_second, default=-1)
    results.done_per_second = [per_second.get(second, 0) for second in range(last + 1)]
    # When each NFT collection's tokens were fetched, from the start: shows whether the hosts
    # were worked on side by side or one after the other.
    results.collections = [
        (name, float(first) - start, float(last) - start)
        for name, first, last in conn.execute(
            """SELECT split_part(c.principal, '.', 2), extract(epoch FROM min(j.updated_at)),
                      extract(epoch FROM max(j.updated_at))
               FROM jobs j JOIN tokens t ON t.id = j.token_id
               JOIN smart_contracts c ON c.id = t.smart_contract_id
               WHERE c.sip = 'sip-009' GROUP BY 1 ORDER BY 1"""
        )
    ]

    # The same pace per NFT collection: a host left idle while the others work shows here.
    paces: dict[str, dict[int, int]] = {}
    for name, second, count in conn.execute(
        """SELECT split_part(c.principal, '.', 2),
                  floor(extract(epoch FROM j.updated_at) - %s)::int, count(*)
           FROM jobs j JOIN tokens t ON t.id = j.token_id
           JOIN smart_contracts c ON c.id = t.smart_contract_id
           WHERE c.sip = 'sip-009' AND j.status = 'done' GROUP BY 1, 2""",
        (start,),
    ):
        paces.setdefault(name, {})[second] = count
    results.collection_pace = {
        name: [pace.get(second, 0) for second in range(last + 1)]
        for name, pace in sorted(paces.items())
    }


def collect_images(conn: psycopg.Connection[Any], results: Results, folder: Path) -> None:
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE status = 'done'),
                  extract(epoch FROM max(updated_at) - min(created_at))
           FROM image_jobs"""
    ).fetchone()
    assert row is not None
    done, seconds = row
    statuses = dict(
        conn.execute("SELECT status::text, count(*) FROM image_jobs GROUP BY 1 ORDER BY 1")
    )
    stored = [f.stat().st_size for f in folder.rglob("*") if f.is_file()]
    results.images = {
        "done": done,
        "seconds": float(seconds or 0),
        "statuses": statuses,
        "files": len(stored),
        "stored_mb": sum(stored) / 1e6,
    }


def dead_process(processes: dict[str, Running]) -> str | None:
    for proc in processes.values():
        if proc.process.poll() is not None:
            return proc.log_tail()
    return None


def drop_databases(*names: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- peak memory -----------------------------------------------------------------------------


class _Sampler:
    def __init__(self, processes: dict[str, Running]) -> None:
        self.processes = processes
        self.peak_mb: dict[str, float] = {}
        self.cpu_s: dict[str, float] = {}
        self.stopped = threading.Event()

    def loop(self) -> None:
        while not self.stopped.wait(0.2):
            self.sample()

    def sample(self) -> None:
        for name, proc in list(self.processes.items()):
            for label, kb in tree_rss_kb(proc.process.pid, name).items():
                self.peak_mb[label] = max(self.peak_mb.get(label, 0.0), kb / 1024)
            cpu = _cpu_s(proc.process.pid)
            if cpu is not None:
                self.cpu_s[name] = cpu


@contextmanager
def rss_sampler(processes: dict[str, Running]) -> Iterator[_Sampler]:
    sampler = _Sampler(processes)
    thread = threading.Thread(target=sampler.loop, daemon=True)
    thread.start()
    try:
        yield sampler
    finally:
        sampler.stopped.set()
        thread.join()


def tree_rss_kb(pid: int, name: str) -> dict[str, int]:
    """RSS of a process and, separately, of each child (gunicorn's workers)."""
    sizes = {name: _rss_kb(pid)}
    for i, child in enumerate(child_pids(pid), start=1):
        sizes[f"{name} child {i}"] = _rss_kb(child)
    return {k: v for k, v in sizes.items() if v}


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


# --- API -------------------------------------------------------------------------------------


def measure_api(options: Options, base: str, database_url: str, tmp: Path) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        nfts = conn.execute(
            """SELECT c.principal, t.token_number FROM tokens t
               JOIN smart_contracts c ON c.id = t.smart_contract_id WHERE t.type = 'nft'"""
        ).fetchall()
        fts = [
            r[0]
            for r in conn.execute("SELECT principal FROM smart_contracts WHERE sip = 'sip-010'")
        ]
    rng = random.Random(7)
    routes = {
        "GET /nft/{principal}/{id} (random of all NFTs)": [
            f"/metadata/v1/nft/{p}/{n}" for p, n in nfts
        ],
        "GET /ft/{principal} (random of 5)": [f"/metadata/v1/ft/{p}" for p in fts],
        "GET /ft?limit=60": ["/metadata/v1/ft?limit=60"],
        "GET /search (50 random NFT ids)": [
            "/metadata/v1/search?" + "&".join(f"contract={p}:{n}" for p, n in rng.sample(nfts, 50))
            for _ in range(200)
        ],
    }
    return [
        {"route": name, **wrk(options, base, paths, tmp / f"paths-{n}.txt")}
        for n, (name, paths) in enumerate(routes.items())
    ]


# The yardstick the reference was measured against: a constant-body app under gunicorn with
# 2 processes of 4 threads (the API's server until session 7), where Hiro's service reached
# about 20 % on the same machine in the same run.
GUNICORN_YARDSTICK = (
    "gunicorn --bind 127.0.0.1:${API_PORT} --workers 2 --threads 4 --access-logfile /dev/null "
    "bench.constant_app:app"
)
REFERENCE_SHARE_OF_YARDSTICK = 0.20


def measure_floor(
    options: Options, env: dict[str, str], tmp: Path, command: str, name: str
) -> dict[str, Any]:
    """wrk on the constant-body app (`bench/constant_app.py`) served by `command`."""
    port = free_port()
    floor_env = env | {"API_PORT": str(port)}
    base = f"http://127.0.0.1:{port}"
    with running(name, command, floor_env, tmp) as server:
        wait_until(
            lambda: (
                subprocess.run(["curl", "-fs", base + "/"], capture_output=True).returncode == 0
            ),
            60,
            "the constant-body app",
            alive=lambda: server.log_tail() if server.process.poll() is not None else None,
        )
        return wrk(options, base, ["/"], tmp / f"paths-{name}.txt")


def wrk(options: Options, base: str, paths: list[str], path_file: Path) -> dict[str, Any]:
    """wrk on random paths of `paths` at the run's connections and duration."""
    path_file.write_text("\n".join(paths) + "\n")
    check = subprocess.run(
        ["curl", "-fsS", "-o", "/dev/null", base + paths[0]], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise SystemExit(f"{base + paths[0]} failed: {check.stderr}")
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{options.connections}",
            f"-d{options.duration}",
            "--latency",
            "-s",
            str(ROOT / "bench" / "paths.lua"),
            base,
            "--",
            str(path_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict[str, Any]:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if not match:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * scale

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:(.*)", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "",
    }


# --- report ----------------------------------------------------------------------------------


def cpu_check_ms() -> float:
    """Milliseconds for a fixed pure-Python workload, best of three: a shared VM's speed
    wanders by tens of percent, and this tells runs made at different moments apart."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(300_000):
            total += len(json.dumps({"n": number, "s": str(number)}))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def machine_facts() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    with psycopg.connect(ADMIN_URL) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    postgres = row[0] if row else "?"
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"Postgres {postgres}, commit {commit or '?'}"
    )


def render(results: Results) -> str:
    o = results.options
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {when}{' - ' + o.label if o.label else ''}",
        "",
        f"Machine: {machine_facts()}",
        "",
        *(
            [
                "CPU check (a fixed pure-Python workload, lower is faster): "
                + " / ".join(f"{ms:.0f} ms" for ms in results.cpu_check_ms)
                + " before / after the run.",
                "",
            ]
            if results.cpu_check_ms
            else []
        ),
        f"Scenario `{o.scenario_name}`: {o.nft_tokens:,} NFTs in {NFT_COLLECTIONS} "
        f"collections, {FT_CONTRACTS} FTs, {SFT_CONTRACTS}x{SFT_TOKENS} SFTs; "
        + (
            "every document on one metadata host"
            if o.hosts == 1
            else "each NFT collection on a metadata host of its own, FTs and SFTs on a fourth"
        )
        + f", answering in {o.latency_ms} ms +- {o.jitter_ms} ms; {o.workers} worker "
        f"process(es).",
        "",
        "Settings that differ from the product's defaults: "
        + (", ".join(f"`{k}={v}`" for k, v in o.changed_settings().items()) or "none")
        + " (besides logging and ports: "
        + ", ".join(f"`{k}={v}`" for k, v in QUIET_SETTINGS.items())
        + ").",
        "",
        "| indexing | value |",
        "|---|---|",
        f"| tokens | {results.tokens:,} ({results.contracts} contracts) |",
        f"| jobs by status | {', '.join(f'{k} {v:,}' for k, v in results.statuses.items())} |",
        f"| wall time, processes started -> every job finished | {results.total_s:.1f} s |",
        f"| **tokens/s end to end** | **{results.tokens / results.total_s:.0f}** |",
    ]
    for stage, seconds in results.stages.items():
        lines.append(f"| {stage} | {seconds:.1f} s |")
    token_stage = results.stages.get("first token job -> last token done")
    if token_stage:
        lines.append(f"| tokens/s in the token stage | {results.tokens / token_stage:.0f} |")
    for name, first, last in results.collections:
        span = f"{first:.1f} -> {last:.1f} s"
        lines.append(f"| {name}: first -> last token done, from the start | {span} |")
    if results.done_per_second:
        pace = ", ".join(str(n) for n in results.done_per_second)
        lines.append(f"| token jobs done in each second from the start | {pace} |")
    for name, counts in results.collection_pace.items():
        pace = ", ".join(str(n) for n in counts)
        lines.append(f"| {name}: token jobs done in each second | {pace} |")
    bound = cap_bound(o)
    lines.append(
        f"| what the per-host caps allow (mean latency, busiest host) | {bound:,.0f} tokens/s; "
        f"end to end reached {results.tokens / results.total_s / bound:.0%} |"
    )
    for name, seconds in sorted(results.cpu_s.items()):
        per_token = seconds / max(results.tokens, 1) * 1000
        lines.append(f"| CPU while indexing, {name} | {seconds:.1f} s ({per_token:.2f} ms/token) |")
    for name, mb in sorted(results.rss_mb.items()):
        lines.append(f"| peak RSS {name} | {mb:.0f} MB |")
    if results.images:
        im = results.images
        lines += [
            f"| image jobs by status ({o.images}x{o.images} PNG sources) "
            f"| {', '.join(f'{k} {v:,}' for k, v in im['statuses'].items())} |",
            f"| first image job -> last image done | {im['seconds']:.1f} s |",
            f"| **images/s** (original + thumbnail each) "
            f"| **{im['done'] / max(im['seconds'], 1e-9):.0f}** |",
            f"| files stored | {im['files']:,} ({im['stored_mb']:.0f} MB) |",
        ]
    if results.api:
        lines += [
            "",
            f"| API route (wrk, {o.connections} connections, {o.duration}) | req/s | p50 | p99 "
            "| errors |",
            "|---|---|---|---|---|",
        ]
        floor, yardstick = results.floor, results.yardstick
        rows = [*results.api]
        if floor:
            rows.append({"route": "constant-body WSGI app, the API's server (floor)", **floor})
        if yardstick:
            rows.append({"route": "constant-body WSGI app, gunicorn 2x4 (yardstick)", **yardstick})
        for n, row in enumerate(rows):
            errors = row["non_2xx"] or row["socket_errors"] or 0
            routes = n < len(results.api)  # the two constant-body rows are the bases
            shares = [
                f"{row['rps'] / base['rps']:.0%} of the {what}"
                for base, what in ((floor, "floor"), (yardstick, "yardstick"))
                if base and routes
            ]
            share = f" ({', '.join(shares)})" if shares else ""
            lines.append(
                f"| {row['route']} | {row['rps']:,.0f}{share} | {row['p50_ms']:.1f} ms "
                f"| {row['p99_ms']:.1f} ms | {errors} |"
            )
        if yardstick:
            reference = REFERENCE_SHARE_OF_YARDSTICK * yardstick["rps"]
            lines += [
                "",
                f"The reference answered about {REFERENCE_SHARE_OF_YARDSTICK:.0%} of the "
                f"yardstick's requests/s in the issue's same-run measurement: about "
                f"{reference:,.0f} req/s here, so `/nft` is "
                f"{results.api[0]['rps'] / reference:.1f}x the reference.",
            ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
