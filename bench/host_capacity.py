"""How close adaptive per-host limits drive a small host to its capacity, and how many 429s
that costs (docs/host-slots.md#adaptive), with the Procfile's real `worker` and `beat`.

    .venv/bin/python bench/host_capacity.py                          # the product's defaults
    .venv/bin/python bench/host_capacity.py --host-concurrency 64    # a cap above the host's

The simulated network serves one NFT collection (`--tokens`, 3,000) from one metadata host
answering in `--latency-ms` (50) that takes `--capacity` (20) requests at once and answers
any more 429 without Retry-After, as a small server behind a connection limit does. The
host's capacity is then capacity / latency requests a second (400). The run reports tokens
a second, the share of that capacity it used (over its busiest 5 s, and end to end: tokens
deferred by a 429 come back 1-2 s later, after beat's next dispatch, and make a tail), the
requests answered 429 and the most the host ever had in flight. At the default cap (16)
the service never asks more than 16 at once, so it cannot see the limit; with a cap above it
(`--host-concurrency`, a setting changed from the defaults and reported as such) only the
adaptive limit keeps it near 20.
Loopback only; fresh databases and a Redis DB of its own, dropped and flushed after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from run import cpu_check_ms, machine_facts  # noqa: E402 - bench/run.py
from sqlalchemy import create_engine, text  # noqa: E402
from support.processes import process_env, procfile_command, running, wait_until  # noqa: E402
from webhook_latency import databases, redis_db  # noqa: E402 - bench/webhook_latency.py

from devnet import chain_db  # noqa: E402
from devnet.scenario import Scenario, nft_collection  # noqa: E402
from devnet.server import Devnet  # noqa: E402

# Tokens stored in each second of the run, for the steadiest stretch of it.
PER_SECOND = text(
    "SELECT COUNT(*) AS n FROM tokens t JOIN jobs j ON j.token_id = t.id "
    "WHERE j.status = 'done' GROUP BY date_trunc('second', t.updated_at) "
    "ORDER BY date_trunc('second', t.updated_at)"
)
STEADY_S = 5
DONE = text(
    "SELECT COUNT(*) FILTER (WHERE status = 'done') AS done, COUNT(*) AS total "
    "FROM jobs WHERE token_id IS NOT NULL"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--host-concurrency", type=int, help="METADATA_HOST_CONCURRENCY_LIMIT")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    changed = {}
    if args.host_concurrency is not None:
        changed["METADATA_HOST_CONCURRENCY_LIMIT"] = str(args.host_concurrency)
    cpu_before = cpu_check_ms()
    scenario = Scenario.build(
        [nft_collection("capacity-monkeys", args.tokens, 2)],
        chain_tip_height=3,
        metadata_latency_ms=args.latency_ms,
        metadata_capacity=args.capacity,
    )
    with (
        databases() as (url, chain_url),
        redis_db() as redis_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        with chain_db.connect(chain_url, autocommit=True) as conn:
            chain_db.seed(conn, scenario)
        with Devnet(scenario) as net:
            env = process_env(
                {
                    "DATABASE_URL": url,
                    "REDIS_URL": redis_url,
                    "STACKS_API_DATABASE_URL": chain_url,
                    "STACKS_NODE_RPC_URL": net.node_url,
                    "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
                    "CELERY_BEAT_SCHEDULE": str(Path(tmp) / "beat-schedule"),
                    "LOG_LEVEL": "WARNING",
                    "WORKER_METRICS_PORT": "0",
                    **changed,
                }
            )
            engine = create_engine(url)
            with (
                running("worker", procfile_command("worker"), env, Path(tmp)),
                running("beat", procfile_command("beat"), env, Path(tmp)),
            ):
                started = time.monotonic()
                first_done: list[float] = []

                def finished() -> bool:
                    with engine.connect() as conn:
                        row = conn.execute(DONE).one()
                    if row.done and not first_done:
                        first_done.append(time.monotonic())
                    return bool(row.total) and row.done == row.total == args.tokens

                wait_until(finished, args.timeout, "every token", interval=0.2)
                elapsed = time.monotonic() - (first_done[0] if first_done else started)
            with engine.connect() as conn:
                per_second = [row.n for row in conn.execute(PER_SECOND)]
            engine.dispose()
            host = net.metadata_host
            served = sum(n for path, n in host.request_counts().items() if path.endswith(".json"))
            refused = host.app.refused
            peak = host.peak_in_flight()
    steady = max(
        (sum(per_second[i : i + STEADY_S]) / STEADY_S for i in range(len(per_second))),
        default=0.0,
    )
    report(args, changed, elapsed, steady, served, refused, peak, [cpu_before, cpu_check_ms()])


def report(
    args: argparse.Namespace,
    changed: dict[str, str],
    elapsed: float,
    steady: float,
    served: int,
    refused: int,
    peak: int,
    cpu: list[float],
) -> None:
    capacity_rps = args.capacity / (args.latency_ms / 1000)
    rate = args.tokens / elapsed
    print(f"machine: {machine_facts()}; CPU check {cpu[0]:.0f} ms before, {cpu[1]:.0f} after")
    print(f"settings changed from the defaults: {changed or 'none'}")
    print(
        f"host: {args.latency_ms} ms a request, {args.capacity} at once "
        f"-> capacity {capacity_rps:.0f} requests/s; {args.tokens} tokens"
    )
    print(f"indexed: {rate:.0f} tokens/s from the first token done to the last")
    print(
        f"share of the host's capacity used: {steady / capacity_rps:.0%} over the busiest "
        f"{STEADY_S} s ({steady:.0f} tokens/s), {rate / capacity_rps:.0%} end to end"
    )
    print(
        f"requests: {served} (429: {refused}, {refused / max(1, served):.2%}); "
        f"most in flight at the host: {peak}"
    )


if __name__ == "__main__":
    main()
