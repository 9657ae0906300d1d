"""Indexing speed through one IPFS gateway, three good ones, three with one slow, and three
with one slow and one serving wrong bytes (docs/gateways.md), with the Procfile's real
`worker` and `beat`.

    .venv/bin/python bench/gateways.py                      # every set-up, 2,000 tokens
    .venv/bin/python bench/gateways.py --setups three-good --tokens 5000

Each simulated gateway is a small HTTP server on its own loopback address (127.0.0.31-33)
answering after `--latency-ms` (20); the slow one (the first configured, so it starts as the
first choice) takes `--slow-ms` (500). Set-ups, each on fresh databases and a Redis DB of its
own:

- one: PUBLIC_GATEWAY_IPFS names gateway A only (today's behaviour);
- three-good: A, B and C, all answering in `--latency-ms`;
- one-slow: A, B and C, A answering in `--slow-ms`;
- verified-good: three good gateways, every token with its own CID (`ipfs://<cid>`, odd
  tokens a raw leaf, even ones a one-block dag-pb file, devnet/ipfs_gateway.py), so every
  document is asked for as a block and checked against its CID
  (docs/gateways.md#verified-content);
- slow-and-forging: as verified-good, but A is slow and B sends wrong bytes (a forged
  document, announced as the block) for one CID in `--forge-every` (4).

The first three serve one collection whose token URI is `ipfs://<cid>/{id}.json` (a path
after the CID: fetched unverified, as before). The run reports tokens a second from the first
token done to the last, the worker's CPU time per token over the same stretch (which moves
far less than tokens a second when other work shares the machine), the requests each gateway
got, and each set-up's speed as a share of its yardstick's (one gateway's; verified-good's
for slow-and-forging). For the verified
set-ups it checks that every token stored the document its CID names, and that every request
asked for a block (none fell back to an unverified fetch): the forged bytes were all refused.
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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from indexing_run import index_scenario  # noqa: E402 - bench/indexing_run.py
from run import cpu_check_ms, machine_facts  # noqa: E402 - bench/run.py

from devnet.ipfs_gateway import IpfsContent  # noqa: E402
from devnet.scenario import Scenario, nft_collection  # noqa: E402
from shared.metadata.ipfs_blocks import DAG_PB_CODEC, RAW_CODEC  # noqa: E402

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
ADDRESSES = ("127.0.0.31", "127.0.0.32", "127.0.0.33")
SETUPS = ("one", "three-good", "one-slow", "verified-good", "slow-and-forging")
VERIFIED_SETUPS = ("verified-good", "slow-and-forging")
# Each set-up's speed is given as a share of its yardstick's.
YARDSTICK = {"three-good": "one", "one-slow": "one", "slow-and-forging": "verified-good"}
DOCUMENT = re.compile(rf"^/ipfs/{CID}/(\d+)\.json$")


class SimulatedGateway:
    """An IPFS gateway on one loopback address, answering after a delay: the collection's
    documents under the directory CID, and the per-token CIDs of `content` (blocks too);
    the CIDs in `forged` get wrong bytes."""

    def __init__(
        self,
        address: str,
        latency_ms: int,
        content: IpfsContent,
        forged: frozenset[str] = frozenset(),
    ) -> None:
        self.latency_s = latency_ms / 1000
        self.content = content
        self.forged = forged
        self.requests: Counter[str] = Counter()
        self.asked_at: list[tuple[float, str]] = []  # (time.monotonic(), kind) per request
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                kind, status, body, content_type = gateway.answer(
                    self.path, self.headers.get("Accept")
                )
                with gateway._lock:
                    gateway.requests[kind] += 1
                    gateway.asked_at.append((time.monotonic(), kind))
                time.sleep(gateway.latency_s)  # the simulated gateway's latency
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)  # a hedge that lost is cut off mid-answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{address}:{self.server.server_port}"

    def answer(self, target: str, accept: str | None) -> tuple[str, int, bytes, str]:
        """(what was asked, status, body, Content-Type)."""
        match = DOCUMENT.match(target)
        if match:
            return "documents", 200, _document(int(match[1])), "application/json"
        cid = target.split("?", 1)[0].rsplit("/", 1)[-1]
        forge = cid in self.forged
        answer = self.content.answer(target, accept, forge=forge)
        if answer.status != 200:
            kind = "other"
        else:
            kind = "forged" if forge else "blocks" if "format=raw" in target else "files"
        return kind, answer.status, answer.body, answer.content_type

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
    return json.dumps({"sip": 16, "name": _name(number), "attributes": attributes}).encode()


def _name(number: int) -> str:
    return f"Gateway Monkeys #{number}"


@dataclass(frozen=True)
class SetupResult:
    rate: float  # tokens a second
    cpu_ms: float  # the worker's CPU time per token
    requests: list[dict[str, int]]  # what each gateway answered, by kind
    not_done: int  # token jobs that ended otherwise: should be 0
    wrong: list[int] | None  # verified set-ups: tokens not storing their CID's document
    unverified: int  # requests for a file rather than its block
    timeline: list[str]  # with --timeline: requests to A, B, C per quarter second


def run_setup(setup: str, args: argparse.Namespace) -> SetupResult:
    latencies = [args.latency_ms] * 3
    if setup in ("one-slow", "slow-and-forging"):
        latencies[0] = args.slow_ms
    content = IpfsContent()
    verified = setup in VERIFIED_SETUPS
    numbers = range(1, args.tokens + 1) if verified else range(0)
    cids = [content.add(_document(n), codec=RAW_CODEC if n % 2 else DAG_PB_CODEC) for n in numbers]
    forged = frozenset(cids[n - 1] for n in numbers if n % args.forge_every == 0)
    forging = 1 if setup == "slow-and-forging" else None  # B
    gateways = [
        SimulatedGateway(address, ms, content, forged if i == forging else frozenset())
        for i, (address, ms) in enumerate(zip(ADDRESSES, latencies, strict=True))
    ]
    used = gateways[:1] if setup == "one" else gateways
    if verified:
        uris = tuple(f"ipfs://{cid}" for cid in cids)
        collection = nft_collection("gateway-monkeys", args.tokens, 2, token_uris=uris)
    else:
        uri = f"ipfs://{CID}/{{id}}.json"
        collection = nft_collection("gateway-monkeys", args.tokens, 2, token_uri=uri)
    scenario = Scenario.build([collection], chain_tip_height=3)
    settings = {
        "PUBLIC_GATEWAY_IPFS": ",".join(g.url for g in used),
        "IPFS_VERIFY_CONTENT": args.verify_content,
    }
    with gateways[0].serving(), gateways[1].serving(), gateways[2].serving():
        run = index_scenario(scenario, args.tokens, settings, args.timeout)
    wrong = [n for n in numbers if run.stored_names.get(n) != _name(n)]
    return SetupResult(
        args.tokens / run.elapsed_s,
        run.worker_cpu_s * 1000 / args.tokens,
        [dict(sorted(g.requests.items())) for g in gateways],
        run.not_done,
        wrong if verified else None,
        sum(g.requests["files"] for g in gateways),
        _timeline(gateways) if args.timeline else [],
    )


def _timeline(gateways: list[SimulatedGateway], step_s: float = 0.25) -> list[str]:
    """Requests each gateway got per `step_s` from the first one (forged answers after a +)."""
    times = [t for g in gateways for t, _ in g.asked_at]
    if not times:
        return []
    start, end = min(times), max(times)
    lines = []
    for i in range(int((end - start) / step_s) + 1):
        low, high = start + i * step_s, start + (i + 1) * step_s
        counts = []
        for g in gateways:
            kinds = [kind for t, kind in g.asked_at if low <= t < high]
            forged = kinds.count("forged")
            counts.append(f"{len(kinds) - forged:4d}" + (f"+{forged:<3d}" if forged else "    "))
        lines.append(f"{i * step_s:5.2f}s " + " ".join(counts))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--slow-ms", type=int, default=500)
    parser.add_argument("--forge-every", type=int, default=4)
    parser.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--timeline", action="store_true", help="print each gateway's requests per 0.25 s"
    )
    parser.add_argument(
        "--verify-content",
        choices=("true", "false"),
        default="true",
        help="IPFS_VERIFY_CONTENT: false measures the same set-ups without the check",
    )
    args = parser.parse_args()
    cpu_before = cpu_check_ms()
    results = {setup: run_setup(setup, args) for setup in args.setups}
    print(
        f"machine: {machine_facts()}; CPU check {cpu_before:.0f} ms before, "
        f"{cpu_check_ms():.0f} after"
    )
    print(
        f"{args.tokens} tokens; gateways answer in {args.latency_ms} ms, the slow one in "
        f"{args.slow_ms} ms; the forging one forges 1 CID in {args.forge_every}; "
        "settings otherwise the defaults"
    )
    for setup, result in results.items():
        yardstick = results.get(YARDSTICK.get(setup, ""))
        share = f", {result.rate / yardstick.rate:.0%} of {YARDSTICK[setup]}'s" if yardstick else ""
        print(
            f"{setup:>16}: {result.rate:6.0f} tokens/s{share}; worker CPU "
            f"{result.cpu_ms:.2f} ms a token; answered by A, B, C: "
            f"{result.requests}; jobs not done: {result.not_done}"
        )
        if result.wrong is not None:
            print(
                f"{'':>16}  tokens not storing their CID's document: {len(result.wrong)} "
                f"{result.wrong[:10]}; unverified fetches: {result.unverified}"
            )
        for line in result.timeline:
            print(f"{'':>16}  {line}")


if __name__ == "__main__":
    main()
