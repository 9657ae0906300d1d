"""Builders for scenario contracts, from code (`nft_collection`, ...) or from scenario JSON."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from devnet.contracts import (
    FT,
    METADATA_PLACEHOLDER,
    NETWORK_VERSIONS,
    NFT,
    OTHER,
    SFT,
    Collection,
    Contract,
    FungibleToken,
    SftToken,
    check,
)
from shared.c32 import c32_address

_DEFAULT_URI = object()  # "use the kind's default template", distinct from None (no URI)


def deployer_address(seed: str, network: str = "mainnet") -> str:
    """A realistic, deterministic single-sig address: hash160 = sha256(seed)[:20]."""
    check(network in NETWORK_VERSIONS, f"unknown network {network!r}")
    return c32_address(NETWORK_VERSIONS[network][0], hashlib.sha256(seed.encode()).digest()[:20])


def default_token_uri(kind: str, name: str) -> str | None:
    if kind == OTHER:
        return None
    document = "ft.json" if kind == FT else "{id}.json"
    return f"{METADATA_PLACEHOLDER}/{name}/{document}"


def make_contract(
    kind: str,
    name: str,
    block_height: int,
    *,
    deployer: str | None = None,
    network: str = "mainnet",
    token_uri: Any = _DEFAULT_URI,
    **options: Any,
) -> Contract:
    """A contract with a deterministic deployer (seeded by its name) and the default URI."""
    return Contract(
        name=name,
        deployer=deployer or deployer_address(name, network),
        kind=kind,
        block_height=block_height,
        token_uri=default_token_uri(kind, name) if token_uri is _DEFAULT_URI else token_uri,
        **options,
    )


def nft_collection(name: str, tokens: int, block_height: int, **options: Any) -> Contract:
    """A SIP-009 collection with tokens 1..`tokens`; options are `Contract` fields."""
    return make_contract(NFT, name, block_height, last_token_id=tokens, **options)


def fungible_token(
    name: str, block_height: int, *, symbol: str, decimals: int = 6, **options: Any
) -> Contract:
    supply = options.pop("total_supply", 1_000_000 * 10**decimals)
    title = options.pop("token_name", name.replace("-", " ").title())
    token = FungibleToken(title, symbol, decimals, supply)
    return make_contract(FT, name, block_height, ft=token, **options)


def semi_fungible_token(
    name: str, block_height: int, tokens: Iterable[SftToken], **options: Any
) -> Contract:
    return make_contract(SFT, name, block_height, sft_tokens=tuple(tokens), **options)


def plain_contract(name: str, block_height: int, **options: Any) -> Contract:
    """A deployed contract that is not a token (the indexer must ignore it)."""
    return make_contract(OTHER, name, block_height, **options)


_PLAIN_KEYS = {"behaviour", "delay_ms", "failed", "clarity_error", "clarity_version", "token_uri"}
_PLAIN_KEYS |= {"last_token_id", "metadata_host"}
_CONTRACT_KEYS = _PLAIN_KEYS | {"name", "deployer", "deployer_seed", "kind", "block_height"}
_CONTRACT_KEYS |= {"token", "tokens", "collection", "transfers", "burns"}


def contract_from_dict(data: Mapping[str, Any], network: str) -> Contract:
    check("name" in data and "kind" in data, f"contract without 'name' or 'kind': {data}")
    name = str(data["name"])
    unknown = set(data) - _CONTRACT_KEYS
    check(not unknown, f"contract {name!r}: unknown keys {sorted(unknown)}")
    check(
        ("deployer" in data) != ("deployer_seed" in data),
        f"contract {name!r}: give exactly one of 'deployer' and 'deployer_seed'",
    )
    deployer = data.get("deployer") or deployer_address(str(data["deployer_seed"]), network)
    options = {key: data[key] for key in _PLAIN_KEYS & set(data)}
    if "token" in data:
        t = data["token"]
        options["ft"] = FungibleToken(t["name"], t["symbol"], t["decimals"], int(t["total_supply"]))
    if "tokens" in data:
        options["sft_tokens"] = tuple(
            SftToken(int(t["id"]), int(t.get("decimals", 0)), int(t["total_supply"]))
            for t in data["tokens"]
        )
    if "collection" in data:
        options["collection"] = _collection_from_dict(data["collection"])
    for key in ("transfers", "burns"):
        if key in data:
            options[key] = tuple(int(token_id) for token_id in data[key])
    return make_contract(
        data["kind"], name, int(data["block_height"]), deployer=deployer, **options
    )


def _collection_from_dict(data: Mapping[str, Any]) -> Collection:
    traits = data.get("attributes")
    pools = tuple((k, tuple(v)) for k, v in (traits or {}).items())
    return Collection(data["title"], data.get("description", ""), data.get("external_url"), pools)
