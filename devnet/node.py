"""Simulated Stacks node RPC: `/v2/info`, contract interfaces and read-only calls answered from
a scenario, on loopback only, counting requests per path so tests can assert on traffic."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from devnet.abis import abi_for
from devnet.chain_db import block_identity
from devnet.scenario import FT, NFT, OTHER, SFT, Contract, Scenario
from shared import clarity
from shared.clarity import ClarityValue, OptionalNone, OptionalSome, ResponseErr, ResponseOk, UInt

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_NODE_PORT = 20443
NETWORK_IDS = {"mainnet": (1, 3652501241), "testnet": (2147483648, 118034699)}
GENESIS_CHAINSTATE_HASH = "74237aa39aa50a83de11a4f53e9d3bb7d43461d1de9873f402e5453ae60bc59b"
SERVER_VERSION = "stacks-node 3.1.0.0.7 (devnet-simulator, release build, linux [x86_64])"


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = {}


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload).encode())


def text_response(text: str, status: int) -> Response:
    return Response(status, text.encode(), "text/plain")


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server on 127.0.0.1 that `route()`s each request and counts paths."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_port}"

    def route(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        raise NotImplementedError

    def count(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    def request_count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def request_counts(self) -> dict[str, int]:
        """A snapshot of requests served so far, by path (without the query string)."""
        with self._lock:
            return dict(self._counts)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name=type(self).__name__)
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cut kept-alive connections, and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        self.server.count(path)
        response = self.server.route(method, path, self.headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class NodeServer(LoopbackServer):
    """The node RPC; `scenario` may be replaced while serving (e.g. after a new deploy)."""

    def __init__(self, scenario: Scenario, *, metadata_url: str, port: int = 0) -> None:
        super().__init__(port)
        self.scenario = scenario
        self.metadata_url = metadata_url

    def route(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["v2", "info"]:
            return json_response(self.info())
        if method == "GET" and parts[:3] == ["v2", "contracts", "interface"] and len(parts) == 5:
            return self.interface(f"{parts[3]}.{parts[4]}")
        if method == "POST" and parts[:3] == ["v2", "contracts", "call-read"] and len(parts) == 6:
            return self.call_read(f"{parts[3]}.{parts[4]}", parts[5], headers, body)
        return text_response("Not found", 404)

    def info(self) -> dict[str, Any]:
        """`/v2/info` of a fully synced node at the scenario's tip."""
        tip = block_identity(self.scenario.chain_tip_height)
        network_id, parent_network_id = NETWORK_IDS[self.scenario.network]
        return {
            "peer_version": 402653196 if self.scenario.network == "mainnet" else 4207599116,
            "pox_consensus": tip.consensus_hash.hex(),
            "burn_block_height": tip.burn_block_height,
            "stable_pox_consensus": tip.consensus_hash.hex(),
            "stable_burn_block_height": tip.burn_block_height - 7,
            "server_version": SERVER_VERSION,
            "network_id": network_id,
            "parent_network_id": parent_network_id,
            "stacks_tip_height": tip.height,
            "stacks_tip": tip.block_hash.hex(),
            "stacks_tip_consensus_hash": tip.consensus_hash.hex(),
            "genesis_chainstate_hash": GENESIS_CHAINSTATE_HASH,
            "unanchored_tip": None,
            "unanchored_seq": None,
            "tenure_height": tip.height,
            "exit_at_block_height": None,
            "is_fully_synced": True,
        }

    def interface(self, contract_id: str) -> Response:
        contract = self.scenario.contract(contract_id)
        abi = abi_for(contract) if contract else None
        if abi is None:
            return text_response("No contract interface data found", 404)
        return json_response(abi)

    def call_read(
        self, contract_id: str, function: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        content_type = headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return text_response("Bad request: expected Content-Type: application/json", 400)
        try:
            arguments = _parse_call_body(body)
        except ValueError as error:
            return text_response(f"Bad request: {error}", 400)
        contract = self.scenario.contract(contract_id)
        try:
            value = call_read_only(contract_id, contract, function, arguments, self.metadata_url)
        except CallError as error:
            return json_response({"okay": False, "cause": str(error)})
        return json_response({"okay": True, "result": clarity.to_hex(value)})


def _parse_call_body(body: bytes) -> list[ClarityValue]:
    """Decode `{"sender", "arguments"}`; any malformed part is the client's error (HTTP 400)."""
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise ValueError(f"body is not JSON: {error}") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("sender"), str):
        raise ValueError("body must be an object with a 'sender' principal")
    arguments = payload.get("arguments")
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        raise ValueError("'arguments' must be a list of hex strings")
    try:
        clarity.principal_from_string(payload["sender"])
        return [clarity.from_hex(argument) for argument in arguments]
    except clarity.ClarityError as error:
        raise ValueError(f"failed to deserialize: {error}") from error


# --- the simulated contracts' read-only functions ----------------------------------------------


class CallError(Exception):
    """The VM refused the call; the message is the node's `cause` text."""


Getter = Callable[[Contract, list[ClarityValue], str], ClarityValue]
_ARG_TYPES = {"uint128": (UInt,), "int128": (clarity.Int,), "bool": (clarity.Bool,)}
_ARG_TYPES["principal"] = (clarity.StandardPrincipal, clarity.ContractPrincipal)
_TYPE_NAMES = {"uint128": "UIntType", "int128": "IntType", "bool": "BoolType"}
_TYPE_NAMES["principal"] = "PrincipalType"


def call_read_only(
    contract_id: str,
    contract: Contract | None,
    function: str,
    arguments: list[ClarityValue],
    metadata_url: str,
) -> ClarityValue:
    """Run a read-only function of a scenario contract the way the Clarity VM would answer."""
    abi = abi_for(contract) if contract else None
    if contract is None or abi is None:
        raise CallError(f'Unchecked(NoSuchContract("{contract_id}"))')
    signature = next((f for f in abi["functions"] if f["name"] == function), None)
    if signature is None:
        raise CallError(f'Unchecked(UndefinedFunction("{function}"))')
    if signature["access"] == "private":
        raise CallError(f'Unchecked(NoSuchPublicFunction("{contract_id}", "{function}"))')
    if signature["access"] == "public":
        raise CallError("NotReadOnly")
    _check_arguments(signature["args"], arguments)
    if contract.clarity_error:
        return ResponseErr(UInt(1))
    return _GETTERS[contract.kind][function](contract, arguments, metadata_url)


def _check_arguments(expected: list[dict[str, Any]], arguments: list[ClarityValue]) -> None:
    if len(expected) != len(arguments):
        raise CallError(f"Unchecked(IncorrectArgumentCount({len(expected)}, {len(arguments)}))")
    for parameter, value in zip(expected, arguments, strict=True):
        allowed = _ARG_TYPES.get(parameter["type"]) if isinstance(parameter["type"], str) else None
        if allowed is not None and not isinstance(value, allowed):
            kind = _TYPE_NAMES[parameter["type"]]
            raise CallError(f"Unchecked(TypeValueError({kind}, {value!r}))")


def _ok(value: ClarityValue) -> ClarityValue:
    return ResponseOk(value)


def _token_id(arguments: list[ClarityValue]) -> int:
    first = arguments[0]
    return first.value if isinstance(first, UInt) else 0


def _uri(contract: Contract, metadata_url: str, utf8: bool = False) -> ClarityValue:
    uri = contract.resolved_token_uri(metadata_url)
    if uri is None:
        return OptionalNone()
    if utf8 or not uri.isascii():
        return OptionalSome(clarity.StringUtf8(uri))
    return OptionalSome(clarity.StringAscii(uri))


def _holder(contract: Contract, token_id: int) -> ClarityValue:
    """A deterministic owner per token, on the contract's network."""
    version = clarity.principal_from_string(contract.deployer)
    digest = hashlib.sha256(f"{contract.contract_id}/{token_id}".encode()).digest()[:20]
    return clarity.StandardPrincipal(version.version, digest)


def _minted_uri(contract: Contract, arguments: list[ClarityValue], url: str) -> ClarityValue:
    return _ok(_uri(contract, url) if contract.has_token(_token_id(arguments)) else OptionalNone())


def _owner(contract: Contract, arguments: list[ClarityValue], url: str) -> ClarityValue:
    token_id = _token_id(arguments)
    if not contract.has_token(token_id):
        return _ok(OptionalNone())
    return _ok(OptionalSome(_holder(contract, token_id)))


def _ft(contract: Contract) -> Any:
    return contract.ft


def _sft(contract: Contract, arguments: list[ClarityValue]) -> Any:
    token_id = _token_id(arguments)
    return next((t for t in contract.sft_tokens if t.token_id == token_id), None)


def _is_deployer(contract: Contract, who: ClarityValue) -> bool:
    return isinstance(who, clarity.StandardPrincipal) and who.address == contract.deployer


_GETTERS: dict[str, dict[str, Getter]] = {
    NFT: {
        "get-last-token-id": lambda c, a, u: _ok(UInt(c.last_token_id)),
        "get-token-uri": _minted_uri,
        "get-owner": _owner,
        "get-base-uri": lambda c, a, u: _ok(clarity.StringAscii(f"{u}/{c.name}/")),
        "get-mint-price": lambda c, a, u: _ok(UInt(50_000_000)),
    },
    FT: {
        "get-name": lambda c, a, u: _ok(clarity.StringAscii(_ft(c).name)),
        "get-symbol": lambda c, a, u: _ok(clarity.StringAscii(_ft(c).symbol)),
        "get-decimals": lambda c, a, u: _ok(UInt(_ft(c).decimals)),
        "get-total-supply": lambda c, a, u: _ok(UInt(_ft(c).total_supply)),
        "get-token-uri": lambda c, a, u: _ok(_uri(c, u, utf8=True)),
        "get-balance": lambda c, a, u: _ok(
            UInt(_ft(c).total_supply if _is_deployer(c, a[0]) else 0)
        ),
    },
    SFT: {
        "get-token-uri": _minted_uri,
        "get-decimals": lambda c, a, u: _ok(UInt(t.decimals if (t := _sft(c, a)) else 0)),
        "get-total-supply": lambda c, a, u: _ok(UInt(t.total_supply if (t := _sft(c, a)) else 0)),
        "get-overall-supply": lambda c, a, u: _ok(UInt(sum(t.total_supply for t in c.sft_tokens))),
        "get-balance": lambda c, a, u: _ok(UInt(0)),
        "get-overall-balance": lambda c, a, u: _ok(UInt(0)),
    },
    OTHER: {
        "get-listing-in-ustx": lambda c, a, u: OptionalNone(),
        "get-last-token-id": lambda c, a, u: _ok(UInt(0)),
    },
}
