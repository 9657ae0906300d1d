"""Contract interfaces shaped like the ones real SIP-009/010/013 deployments return from
`/v2/contracts/interface`, so ABI-based token detection sees what it sees on mainnet."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from devnet.scenario import FT, NFT, SFT, Contract
from shared.c32 import c32_address_decode

Json = Any
UINT, PRINCIPAL, BOOL = "uint128", "principal", "bool"
ACCESS_ORDER = {"private": 0, "public": 1, "read_only": 2}
EPOCH, CLARITY = "Epoch24", "Clarity2"
MEMO: Json = {"buffer": {"length": 34}}
ASCII_256: Json = {"string-ascii": {"length": 256}}


def response(ok: Json, error: Json = UINT) -> Json:
    return {"response": {"ok": ok, "error": error}}


def optional(inner: Json) -> Json:
    return {"optional": inner}


def function(name: str, access: str, args: list[tuple[str, Json]], output: Json) -> Json:
    arguments = [{"name": arg, "type": kind} for arg, kind in args]
    return {"name": name, "access": access, "args": arguments, "outputs": {"type": output}}


def interface(functions: list[Json], **sections: list[Json]) -> Json:
    """Assemble an ABI with the node's ordering: private, public, read-only, each by name."""
    ordered = sorted(functions, key=lambda f: (ACCESS_ORDER[f["access"]], f["name"]))
    return {
        "functions": ordered,
        "variables": sections.get("variables", []),
        "maps": sections.get("maps", []),
        "fungible_tokens": sections.get("fungible_tokens", []),
        "non_fungible_tokens": sections.get("non_fungible_tokens", []),
        "epoch": EPOCH,
        "clarity_version": CLARITY,
    }


def constant(name: str, kind: Json) -> Json:
    return {"name": name, "type": kind, "access": "constant"}


def variable(name: str, kind: Json) -> Json:
    return {"name": name, "type": kind, "access": "variable"}


def _error_constants(*names: str) -> list[Json]:
    return [constant(name, response("none", UINT)) for name in names]


def sip009_abi(asset: str) -> Json:
    """A minting NFT collection in the style of the popular mainnet PFP contracts."""
    functions = [
        function("is-owner", "private", [("token-id", UINT), ("user", PRINCIPAL)], BOOL),
        function("mint", "private", [("new-owner", PRINCIPAL)], response(BOOL)),
        function("burn", "public", [("token-id", UINT)], response(BOOL)),
        function("claim", "public", [], response(BOOL)),
        function("set-base-uri", "public", [("new-base-uri", ASCII_256)], response(BOOL)),
        function("set-mint-price", "public", [("price", UINT)], response(BOOL)),
        function(
            "transfer",
            "public",
            [("token-id", UINT), ("sender", PRINCIPAL), ("recipient", PRINCIPAL)],
            response(BOOL),
        ),
        function("get-base-uri", "read_only", [], response(ASCII_256, "none")),
        function("get-last-token-id", "read_only", [], response(UINT, "none")),
        function("get-mint-price", "read_only", [], response(UINT, "none")),
        function("get-owner", "read_only", [("token-id", UINT)], response(optional(PRINCIPAL))),
        function("get-token-uri", "read_only", [("token-id", UINT)], response(optional(ASCII_256))),
    ]
    return interface(
        functions,
        variables=[
            constant("contract-owner", PRINCIPAL),
            *_error_constants("err-not-authorized", "err-not-found", "err-sold-out"),
            variable("base-uri", ASCII_256),
            variable("last-id", UINT),
            variable("mint-price", UINT),
        ],
        maps=[{"name": "mint-count", "key": PRINCIPAL, "value": UINT}],
        non_fungible_tokens=[{"name": asset, "type": UINT}],
    )


def sip010_abi(asset: str) -> Json:
    """A SIP-010 token with owner-only mint and a settable URI, like most mainnet FTs."""
    uri: Json = optional({"string-utf8": {"length": 256}})
    ascii_32: Json = {"string-ascii": {"length": 32}}
    memo = ("memo", optional(MEMO))
    functions = [
        function("burn", "public", [("amount", UINT), ("owner", PRINCIPAL)], response(BOOL)),
        function("mint", "public", [("amount", UINT), ("recipient", PRINCIPAL)], response(BOOL)),
        function("set-token-uri", "public", [("value", uri)], response(BOOL)),
        function(
            "transfer",
            "public",
            [("amount", UINT), ("sender", PRINCIPAL), ("recipient", PRINCIPAL), memo],
            response(BOOL),
        ),
        function("get-balance", "read_only", [("who", PRINCIPAL)], response(UINT, "none")),
        function("get-decimals", "read_only", [], response(UINT, "none")),
        function("get-name", "read_only", [], response(ascii_32, "none")),
        function("get-symbol", "read_only", [], response(ascii_32, "none")),
        function("get-token-uri", "read_only", [], response(uri, "none")),
        function("get-total-supply", "read_only", [], response(UINT, "none")),
    ]
    return interface(
        functions,
        variables=[
            constant("contract-owner", PRINCIPAL),
            *_error_constants("err-owner-only", "err-not-token-owner"),
            variable("token-uri", uri),
        ],
        fungible_tokens=[{"name": asset}],
    )


def sip013_abi(asset: str) -> Json:
    """The SIP-013 reference implementation: one FT for amounts, one NFT for (id, owner)."""
    owner_id: Json = {
        "tuple": [{"name": "owner", "type": PRINCIPAL}, {"name": "token-id", "type": UINT}]
    }
    return interface(
        _sip013_functions(),
        variables=[constant("contract-owner", PRINCIPAL), *_error_constants("err-owner-only")],
        maps=[
            {"name": "token-balances", "key": owner_id, "value": UINT},
            {"name": "token-supplies", "key": UINT, "value": UINT},
        ],
        fungible_tokens=[{"name": asset}],
        non_fungible_tokens=[{"name": f"{asset}-id", "type": owner_id}],
    )


def _sip013_functions() -> list[Json]:
    parties = [("sender", PRINCIPAL), ("recipient", PRINCIPAL)]
    amount = [("token-id", UINT), ("amount", UINT)]
    many = {"list": {"type": {"tuple": _transfer_tuple()}, "length": 200}}
    by_id = [("token-id", UINT)]
    return [
        function("get-balance-uint", "private", [("token-id", UINT), ("who", PRINCIPAL)], UINT),
        function("mint", "public", [*amount, ("recipient", PRINCIPAL)], response(BOOL)),
        function("transfer", "public", [*amount, *parties], response(BOOL)),
        function("transfer-many", "public", [("transfers", many)], response(BOOL)),
        function("transfer-memo", "public", [*amount, *parties, ("memo", MEMO)], response(BOOL)),
        function("get-balance", "read_only", [*by_id, ("who", PRINCIPAL)], response(UINT)),
        function("get-decimals", "read_only", by_id, response(UINT)),
        function("get-overall-balance", "read_only", [("who", PRINCIPAL)], response(UINT)),
        function("get-overall-supply", "read_only", [], response(UINT)),
        function("get-token-uri", "read_only", by_id, response(optional(ASCII_256))),
        function("get-total-supply", "read_only", by_id, response(UINT)),
    ]


def _transfer_tuple() -> list[Json]:
    fields = [("amount", UINT), ("recipient", PRINCIPAL), ("sender", PRINCIPAL), ("token-id", UINT)]
    return [{"name": name, "type": kind} for name, kind in fields]


def marketplace_abi() -> Json:
    """A non-token contract (an NFT marketplace) that an indexer must not mistake for a token."""
    listing: Json = {
        "tuple": [{"name": "commission", "type": PRINCIPAL}, {"name": "price", "type": UINT}]
    }
    functions = [
        function("buy-in-ustx", "public", [("id", UINT), ("comm", PRINCIPAL)], response(BOOL)),
        function(
            "list-in-ustx",
            "public",
            [("id", UINT), ("price", UINT), ("comm", PRINCIPAL)],
            response(BOOL),
        ),
        function("unlist-in-ustx", "public", [("id", UINT)], response(BOOL)),
        function("get-listing-in-ustx", "read_only", [("id", UINT)], optional(listing)),
        function("get-last-token-id", "read_only", [], response(UINT, "none")),
    ]
    return interface(
        functions,
        variables=_error_constants("err-not-listed", "err-commission-mismatch"),
        maps=[{"name": "market", "key": UINT, "value": listing}],
    )


@functools.lru_cache(maxsize=1024)  # the node asks on every call; ABIs never change
def abi_for(contract: Contract) -> Json | None:
    """The interface the node reports, or None when the deploy failed (no contract exists)."""
    if contract.failed:
        return None
    builders = {NFT: sip009_abi, FT: sip010_abi, SFT: sip013_abi}
    builder = builders.get(contract.kind)
    return builder(contract.name) if builder else marketplace_abi()


_TRAITS = {  # the mainnet trait each standard's contracts implement
    NFT: "'SP2PABAF9FTAJYNFZH93XENAJ8FVY99RRM50D2JG9.nft-trait.nft-trait",
    FT: "'SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE.sip-010-trait-ft-standard.sip-010-trait",
    SFT: "'SPDBEG5X8XD50SPM1JJH0E5CTXGDV5NJTKAKKR5V.sip013-semi-fungible-token-trait"
    ".sip013-semi-fungible-token-trait",
}
_SOURCE_BODY = {
    NFT: """(impl-trait {trait})
(define-non-fungible-token {name} uint)
(define-data-var last-id uint u{last_token_id})
(define-data-var base-uri (string-ascii 256) "{uri}")
(define-read-only (get-last-token-id) (ok (var-get last-id)))
(define-read-only (get-token-uri (token-id uint)) (ok (some (var-get base-uri))))
(define-read-only (get-owner (token-id uint)) (ok (nft-get-owner? {name} token-id)))
(define-public (transfer (token-id uint) (sender principal) (recipient principal))
  (begin (asserts! (is-eq tx-sender sender) (err u401))
         (nft-transfer? {name} token-id sender recipient)))""",
    FT: """(impl-trait {trait})
(define-fungible-token {name})
(define-data-var token-uri (optional (string-utf8 256)) (some u"{uri}"))
(define-read-only (get-name) (ok "{token_name}"))
(define-read-only (get-symbol) (ok "{symbol}"))
(define-read-only (get-decimals) (ok u{decimals}))
(define-read-only (get-total-supply) (ok (ft-get-supply {name})))
(define-read-only (get-token-uri) (ok (var-get token-uri)))""",
    SFT: """(impl-trait {trait})
(define-fungible-token {name})
(define-non-fungible-token {name}-id {{token-id: uint, owner: principal}})
(define-map token-supplies uint uint)
(define-read-only (get-token-uri (token-id uint)) (ok (some "{uri}")))
(define-read-only (get-overall-supply) (ok (ft-get-supply {name})))""",
}
_MARKET_SOURCE = """(define-map market uint {{commission: principal, price: uint}})
(define-read-only (get-listing-in-ustx (id uint)) (map-get? market id))"""


def source_code(contract: Contract, metadata_url: str) -> str:
    """A short, plausible Clarity source for the deploy transaction and smart_contracts row."""
    uri = (contract.resolved_token_uri(metadata_url) or "").replace('"', "")
    ft = contract.ft
    body = _SOURCE_BODY.get(contract.kind, _MARKET_SOURCE).format(
        name=contract.name,
        trait=_TRAITS.get(contract.kind, ""),
        uri=uri,
        last_token_id=contract.last_token_id,
        token_name=ft.name if ft else "",
        symbol=ft.symbol if ft else "",
        decimals=ft.decimals if ft else 0,
    )
    header = f";; {contract.collection.title}\n;; deployed by the devnet simulator\n"
    return header + body + "\n"


_NETWORK_PREFIXES = {22: b"\x00\x00\x00\x00\x01", 20: b"\x00\x00\x00\x00\x01"}


def raw_deploy_tx(contract: Contract, code: str, nonce: int, fee: int) -> bytes:
    """A single-sig deploy transaction in the consensus layout (with a made-up signature)."""
    version, signer = c32_address_decode(contract.deployer)
    prefix = _NETWORK_PREFIXES.get(version, b"\x80\x80\x00\x00\x00")  # else testnet
    auth = b"\x04\x00" + signer + nonce.to_bytes(8, "big") + fee.to_bytes(8, "big") + b"\x00"
    signature = hashlib.sha256(contract.contract_id.encode()).digest() * 2 + b"\x01"
    clarity = contract.clarity_version
    kind = b"\x01" if clarity is None else b"\x06" + bytes([clarity])
    name = bytes([len(contract.name)]) + contract.name.encode()
    payload = kind + name + len(code.encode()).to_bytes(4, "big") + code.encode()
    return prefix + auth + signature + b"\x03\x02\x00\x00\x00\x00" + payload
