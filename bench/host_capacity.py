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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from indexing_run import index_scenario
from run import cpu_check_ms, machine_facts

from devnet.scenario import Scenario, nft_collection
from devnet.server import Devnet

STEADY_S = 5


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
    host: dict[str, int] = {}

    def note_host(net: Devnet) -> None:
        counts = net.metadata_host.request_counts()
        host["served"] = sum(n for path, n in counts.items() if path.endswith(".json"))
        host["refused"] = net.metadata_host.app.refused
        host["peak"] = net.metadata_host.peak_in_flight()

    run = index_scenario(scenario, args.tokens, changed, args.timeout, before_stop=note_host)
    steady = max(
        (sum(run.per_second[i : i + STEADY_S]) / STEADY_S for i in range(len(run.per_second))),
        default=0.0,
    )
    report(
        args,
        changed,
        run.elapsed_s,
        steady,
        host["served"],
        host["refused"],
        host["peak"],
        [cpu_before, cpu_check_ms()],
    )


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
