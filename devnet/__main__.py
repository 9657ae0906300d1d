"""`python -m devnet seed|serve`: fill a Stacks API database and serve the simulated network."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from devnet import chain_db
from devnet.metadata_host import DEFAULT_METADATA_PORT
from devnet.node import DEFAULT_NODE_PORT
from devnet.scenario import FT, NFT, Contract, Scenario, ScenarioError
from devnet.server import LOOPBACK, Devnet


def api_url() -> str:
    """The metadata API the examples call: `make run` starts it on API_PORT (3000 unset)."""
    return f"http://localhost:{os.environ.get('API_PORT') or 3000}/metadata/v1"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        scenario = Scenario.load(args.scenario) if args.scenario else Scenario.packaged()
    except (OSError, ScenarioError) as error:
        print(f"devnet: {error}", file=sys.stderr)
        return 2
    if args.command == "seed":
        seed_database(args.database_url, scenario, args.metadata_url)
        print(f"seeded {len(scenario.contracts)} contracts up to block {scenario.chain_tip_height}")
        return 0
    return serve(scenario, args)


def seed_database(url: str, scenario: Scenario, metadata_url: str) -> None:
    """Create the database if needed and rebuild its SBA tables from the scenario."""
    chain_db.ensure_database(url)
    with chain_db.connect(url) as conn:
        chain_db.create_schema(conn)
        chain_db.seed(conn, scenario, metadata_url=metadata_url)


def serve(scenario: Scenario, args: argparse.Namespace) -> int:
    metadata_url = f"http://{LOOPBACK}:{args.metadata_port}"
    if args.database_url:
        seed_database(args.database_url, scenario, metadata_url)
    # Both stop like Ctrl-C, even where a background launch left SIGINT ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    try:
        with Devnet(scenario, node_port=args.node_port, metadata_port=args.metadata_port) as net:
            announce(net)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        print("devnet stopped", flush=True)
    return 0


def announce(net: Devnet) -> None:
    """The node and default metadata host URLs, one line per further metadata host with its
    latency, then one line per token contract with a request to try against the metadata API."""
    print(f"stacks node rpc: {net.node_url}  metadata host: {net.metadata_url}", flush=True)
    for address, server in net.metadata_servers.items():
        if address != LOOPBACK:
            latency_ms, jitter_ms = net.scenario.latency_for(address)
            print(f"metadata host: {server.url}  latency {latency_ms}+-{jitter_ms} ms", flush=True)
    for contract in net.scenario.token_contracts:
        print(f"{contract.kind} {contract.contract_id}  {example_request(contract)}", flush=True)


def example_request(contract: Contract) -> str:
    if contract.kind == FT:
        return f"curl {api_url()}/ft/{contract.contract_id}"
    first = 1 if contract.kind == NFT else min((t.token_id for t in contract.sft_tokens), default=1)
    route = "nft" if contract.kind == NFT else "sft"
    return f"curl {api_url()}/{route}/{contract.contract_id}/{first}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devnet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    seed = commands.add_parser("seed", help="(re)create the Stacks API tables and fill them")
    seed.add_argument("--database-url", required=True)
    seed.add_argument("--metadata-url", default=chain_db.DEFAULT_METADATA_URL)
    serve = commands.add_parser("serve", help="serve the node RPC and metadata host on loopback")
    serve.add_argument("--node-port", type=int, default=DEFAULT_NODE_PORT)
    serve.add_argument("--metadata-port", type=int, default=DEFAULT_METADATA_PORT)
    serve.add_argument("--database-url", help="seed this Stacks API database first")
    for command in (seed, serve):
        command.add_argument("--scenario", help="scenario JSON (default: the packaged default)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
