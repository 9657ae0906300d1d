"""Simulated Stacks node RPC: `/v2/info`, contract interfaces and read-only calls answered from
a scenario the way a real node answers them (`devnet.server` puts it on a loopback port)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from devnet.abis import abi_for
from devnet.chain_db import original_block
from devnet.nft_history import owner_of
from devnet.scenario import FT, NFT, OTHER, SFT, Contract, FungibleToken, Scenario, SftToken
from shared import clarity
from shared.clarity import ClarityValue, OptionalNone, OptionalSome, ResponseErr, ResponseOk, UInt

DEFAULT_NODE_PORT = 20443
NETWORK_IDS = {"mainnet": (1, 3652501241), "testnet": (2147483648, 118034699)}
GENESIS_CHAINSTATE_HASH = "74237aa39aa50a83de11a4f53e9d3bb7d43461d1de9873f402e5453ae60bc59b"
SERVER_VERSION = "stacks-node 3.1.0.0.7 (devnet-simulator, release build, linux [x86_64])"


class Response(NamedTuple):
    """What a simulated service answers; `devnet.server` writes it to the socket."""

    status: int
    body: bytes
    content_type: str = "application/json"


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload).encode())


def text_response(text: str, status: int) -> Response:
    return Response(status, text.encode(), "text/plain")


class NodeRpc:
    """Routes node RPC requests; `scenario` may be replaced while serving (e.g. a new deploy)."""

    def __init__(self, scenario: Scenario, *, metadata_url: str) -> None:
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
        tip = original_block(self.scenario.chain_tip_height)
        consensus_hash = tip.digest("consensus")[:20].hex()
        network_id, parent_network_id = NETWORK_IDS[self.scenario.network]
        return {
            "peer_version": 402653196 if self.scenario.network == "mainnet" else 4207599116,
            "pox_consensus": consensus_hash,
            "burn_block_height": tip.burn_block_height,
            "stable_pox_consensus": consensus_hash,
            "stable_burn_block_height": tip.burn_block_height - 7,
            "server_version": SERVER_VERSION,
            "network_id": network_id,
            "parent_network_id": parent_network_id,
            "stacks_tip_height": tip.height,
            "stacks_tip": tip.block_hash.hex(),
            "stacks_tip_consensus_hash": consensus_hash,
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
        content_type = headers.get("content-type", "")
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
        _check_sender(payload["sender"])
        return [clarity.from_hex(argument) for argument in arguments]
    except clarity.ClarityError as error:
        raise ValueError(f"failed to deserialize: {error}") from error


@functools.lru_cache(maxsize=1024)
def _check_sender(sender: str) -> None:
    """Raise ClarityError unless `sender` is a principal (a client sends the same few, and
    the c32 checksum was a tenth of the simulator's CPU under load)."""
    clarity.principal_from_string(sender)


# --- the simulated contracts' read-only functions ----------------------------------------------


class CallError(Exception):
    """The VM refused the call; the message is the node's `cause` text."""


Getter = Callable[[Contract, list[ClarityValue], str], ClarityValue]
_ARG_TYPES: dict[str, tuple[tuple[type, ...], str]] = {  # ABI type -> (accepted, VM type name)
    "uint128": ((UInt,), "UIntType"),
    "int128": ((clarity.Int,), "IntType"),
    "bool": ((clarity.Bool,), "BoolType"),
    "principal": ((clarity.StandardPrincipal, clarity.ContractPrincipal), "PrincipalType"),
}


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
    if contract.clarity_error or function in contract.erroring_functions:
        return ResponseErr(UInt(1))
    return _GETTERS[contract.kind][function](contract, arguments, metadata_url)


def _check_arguments(expected: list[dict[str, Any]], arguments: list[ClarityValue]) -> None:
    if len(expected) != len(arguments):
        raise CallError(f"Unchecked(IncorrectArgumentCount({len(expected)}, {len(arguments)}))")
    for parameter, value in zip(expected, arguments, strict=True):
        # Only primitive types are checked; composite ones (memo buffers, lists) accept anything.
        kind = parameter["type"] if isinstance(parameter["type"], str) else "composite"
        accepted, name = _ARG_TYPES.get(kind, ((ClarityValue,), kind))
        if not isinstance(value, accepted):
            raise CallError(f"Unchecked(TypeValueError({name}, {value!r}))")


def _token_id(arguments: list[ClarityValue]) -> int:
    first = arguments[0]
    return first.value if isinstance(first, UInt) else 0


def _uri(
    contract: Contract, metadata_url: str, utf8: bool = False, token_id: int = 0
) -> ClarityValue:
    uri = contract.token_uri_of(token_id, metadata_url)
    if uri is None:
        return OptionalNone()
    if utf8 or not uri.isascii():
        return OptionalSome(clarity.StringUtf8(uri))
    return OptionalSome(clarity.StringAscii(uri))


def _minted_uri(contract: Contract, arguments: list[ClarityValue], url: str) -> ClarityValue:
    token_id = _token_id(arguments)
    minted = contract.has_token(token_id)
    return ResponseOk(_uri(contract, url, token_id=token_id) if minted else OptionalNone())


def _base_uri(contract: Contract, arguments: list[ClarityValue], url: str) -> ClarityValue:
    """The collection's folder on its own metadata host."""
    return ResponseOk(clarity.StringAscii(f"{contract.metadata_base(url)}/{contract.name}/"))


def _owner(contract: Contract, arguments: list[ClarityValue], url: str) -> ClarityValue:
    """The holder at the end of the seeded history (devnet.nft_history); none once burned."""
    owner = owner_of(contract, _token_id(arguments))
    if owner is None:
        return ResponseOk(OptionalNone())
    return ResponseOk(OptionalSome(clarity.principal_from_string(owner)))


def _ft(contract: Contract) -> FungibleToken:
    if contract.ft is None:  # Contract validation makes every sip-010 carry one
        raise CallError("Runtime(UnwrapFailure, None)")
    return contract.ft


def _sft(contract: Contract, arguments: list[ClarityValue]) -> SftToken:
    token_id = _token_id(arguments)
    found = (t for t in contract.sft_tokens if t.token_id == token_id)
    return next(found, SftToken(token_id, 0, 0))  # an unknown id has no supply


def _ft_balance(contract: Contract, arguments: list[ClarityValue], url: str) -> ClarityValue:
    """The deployer holds the whole supply."""
    who = arguments[0]
    mine = isinstance(who, clarity.StandardPrincipal) and who.address == contract.deployer
    return ResponseOk(UInt(_ft(contract).total_supply if mine else 0))


def _ok(read: Callable[[Contract, list[ClarityValue]], ClarityValue]) -> Getter:
    return lambda contract, arguments, url: ResponseOk(read(contract, arguments))


_GETTERS: dict[str, dict[str, Getter]] = {
    NFT: {
        "get-last-token-id": _ok(lambda c, a: UInt(c.last_token_id)),
        "get-token-uri": _minted_uri,
        "get-owner": _owner,
        "get-base-uri": _base_uri,
        "get-mint-price": _ok(lambda c, a: UInt(50_000_000)),
    },
    FT: {
        "get-name": _ok(lambda c, a: clarity.StringAscii(_ft(c).name)),
        "get-symbol": _ok(lambda c, a: clarity.StringAscii(_ft(c).symbol)),
        "get-decimals": _ok(lambda c, a: UInt(_ft(c).decimals)),
        "get-total-supply": _ok(lambda c, a: UInt(_ft(c).total_supply)),
        "get-token-uri": lambda c, a, u: ResponseOk(_uri(c, u, utf8=True)),
        "get-balance": _ft_balance,
    },
    SFT: {
        "get-token-uri": _minted_uri,
        "get-decimals": _ok(lambda c, a: UInt(_sft(c, a).decimals)),
        "get-total-supply": _ok(lambda c, a: UInt(_sft(c, a).total_supply)),
        "get-overall-supply": _ok(lambda c, a: UInt(sum(t.total_supply for t in c.sft_tokens))),
        "get-balance": _ok(lambda c, a: UInt(0)),
        "get-overall-balance": _ok(lambda c, a: UInt(0)),
    },
    OTHER: {
        "get-listing-in-ustx": lambda c, a, u: OptionalNone(),
        "get-last-token-id": _ok(lambda c, a: UInt(0)),
    },
}
