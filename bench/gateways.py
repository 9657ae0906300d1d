"""Indexing speed through one IPFS gateway, three good ones, and three with one slow
(docs/gateways.md), with the Procfile's real `worker` and `beat`.

    .venv/bin/python bench/gateways.py                      # all three set-ups, 2,000 tokens
    .venv/bin/python bench/gateways.py --setups three-good --tokens 5000

The simulated network serves one NFT collection whose token URI is `ipfs://<cid>/{id}.json`.
Each simulated gateway is a small HTTP server on its own loopback address (127.0.0.31-33)
answering `/ipfs/<cid>/<n>.json` with the token's SIP-016 document after `--latency-ms`
(20); the slow one (the first configured, so it starts as the first choice) takes
`--slow-ms` (500). Set-ups, each on fresh databases and a Redis DB of its own:

- one: PUBLIC_GATEWAY_IPFS names gateway A only (today's behaviour);
- three-good: A, B and C, all answering in `--latency-ms`;
- one-slow: A, B and C, A answering in `--slow-ms`.

The run reports tokens a second from the first token done to the last, the requests each
gateway got, and each set-up's speed as a share of the one-gateway run's.
Loopback only; databases dropped and Redis DBs flushed after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from indexing_run import index_scenario  # noqa: E402 - bench/indexing_run.py
from run import cpu_check_ms, machine_facts  # noqa: E402 - bench/run.py

from devnet.scenario import Scenario, nft_collection  # noqa: E402

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
ADDRESSES = ("127.0.0.31", "127.0.0.32", "127.0.0.33")
SETUPS = ("one", "three-good", "one-slow")
DOCUMENT = re.compile(rf"^/ipfs/{CID}/(\d+)\.json$")


class SimulatedGateway:
    """An IPFS gateway on one loopback address: the collection's documents after a delay."""

    def __init__(self, address: str, latency_ms: int) -> None:
        self.latency_s = latency_ms / 1000
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                match = DOCUMENT.match(self.path)
                with gateway._lock:
                    gateway.requests["documents" if match else "other"] += 1
                time.sleep(gateway.latency_s)  # the simulated gateway's latency
                status, body = (200, _document(int(match[1]))) if match else (404, b"no")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)  # a hedge that lost is cut off mid-answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{address}:{self.server.server_port}"

    @contextmanager
    def serving(self) -> Iterator[SimulatedGateway]:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def _document(number: int) -> bytes:
    attributes = [{"trait_type": "Background", "value": "Teal"}]
    return json.dumps(
        {"sip": 16, "name": f"Gateway Monkeys #{number}", "attributes": attributes}
    ).encode()


def run_setup(setup: str, args: argparse.Namespace) -> tuple[float, list[int], int]:
    """Tokens a second, documents each gateway served, and jobs not done (should be 0)."""
    latencies = [args.latency_ms] * 3
    if setup == "one-slow":
        latencies[0] = args.slow_ms
    gateways = [SimulatedGateway(a, ms) for a, ms in zip(ADDRESSES, latencies, strict=True)]
    used = gateways[:1] if setup == "one" else gateways
    uri = f"ipfs://{CID}/{{id}}.json"
    scenario = Scenario.build(
        [nft_collection("gateway-monkeys", args.tokens, 2, token_uri=uri)], chain_tip_height=3
    )
    settings = {"PUBLIC_GATEWAY_IPFS": ",".join(g.url for g in used)}
    with gateways[0].serving(), gateways[1].serving(), gateways[2].serving():
        run = index_scenario(scenario, args.tokens, settings, args.timeout)
    served = [g.requests["documents"] for g in gateways]
    return args.tokens / run.elapsed_s, served, run.not_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--slow-ms", type=int, default=500)
    parser.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    cpu_before = cpu_check_ms()
    results = {setup: run_setup(setup, args) for setup in args.setups}
    print(
        f"machine: {machine_facts()}; CPU check {cpu_before:.0f} ms before, "
        f"{cpu_check_ms():.0f} after"
    )
    print(
        f"{args.tokens} tokens; gateways answer in {args.latency_ms} ms, the slow one in "
        f"{args.slow_ms} ms; settings otherwise the defaults"
    )
    baseline = results.get("one", (0.0, [], 0))[0]
    for setup, (rate, served, not_done) in results.items():
        share = f", {rate / baseline:.0%} of one gateway's" if baseline else ""
        print(
            f"{setup:>10}: {rate:6.0f} tokens/s{share}; documents served by A, B, C: "
            f"{served}; jobs not done: {not_done}"
        )


if __name__ == "__main__":
    main()
