"""Typed, validated description of a simulated chain: which token contracts exist and how their
metadata hosts behave. Loaded from JSON (`devnet/scenarios/*.json`) or built in code."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from shared.c32 import InvalidAddress, c32_address, c32_address_decode, check_contract_name

NFT, FT, SFT, OTHER = "sip-009", "sip-010", "sip-013", "other"
KINDS = (NFT, FT, SFT, OTHER)
BEHAVIOURS = (  # how a contract's metadata host answers document requests
    "ok",
    "not-found",
    "server-error",
    "html",
    "empty",
    "array",
    "no-name",
    "huge",
    "slow",
)
NETWORK_VERSIONS = {"mainnet": (22, 20), "testnet": (26, 21)}  # (single-sig, multi-sig)
METADATA_PLACEHOLDER = "{metadata}"
_DEFAULT_URI = object()  # "use the kind's default template", distinct from None (no URI)
Traits = tuple[tuple[str, tuple[str, ...]], ...]  # (trait_type, values to pick from)


class ScenarioError(ValueError):
    """A scenario file or builder call describes an impossible chain; the message says where."""


@dataclass(frozen=True)
class Collection:
    """Facts the metadata host turns into SIP-016 documents."""

    title: str
    description: str
    external_url: str | None = None
    traits: Traits = ()  # empty: the metadata host's generic pools


@dataclass(frozen=True)
class FungibleToken:
    name: str
    symbol: str
    decimals: int
    total_supply: int


@dataclass(frozen=True)
class SftToken:
    token_id: int
    decimals: int
    total_supply: int


@dataclass(frozen=True)
class Contract:
    """One contract deploy transaction and everything the simulated node answers about it."""

    name: str
    deployer: str
    kind: str
    block_height: int
    token_uri: str | None = None
    behaviour: str = "ok"
    delay_ms: int = 0
    failed: bool = False
    clarity_error: bool = False
    clarity_version: int | None = 2
    last_token_id: int = 0
    ft: FungibleToken | None = None
    sft_tokens: tuple[SftToken, ...] = ()
    collection: Collection = field(default_factory=lambda: Collection("", ""))

    def __post_init__(self) -> None:
        where = f"contract {self.name!r}"
        _check(self.kind in KINDS, f"{where}: unknown kind {self.kind!r}, expected one of {KINDS}")
        _check(self.behaviour in BEHAVIOURS, f"{where}: unknown behaviour {self.behaviour!r}")
        _check(self.block_height >= 1, f"{where}: block_height must be >= 1")
        _check(self.delay_ms >= 0 and self.last_token_id >= 0, f"{where}: negative number")
        _check(self.kind != FT or self.ft is not None, f"{where}: sip-010 needs a 'token' object")
        ids = [token.token_id for token in self.sft_tokens]
        _check(len(ids) == len(set(ids)), f"{where}: duplicate SFT token ids")
        try:
            check_contract_name(self.name, deployable=True)
            c32_address_decode(self.deployer)
        except InvalidAddress as error:
            raise ScenarioError(f"{where}: {error}") from error
        if not self.collection.title:
            title = self.name.replace("-", " ").title()
            default = Collection(title, f"{title}, a collection on the simulated Stacks network.")
            object.__setattr__(self, "collection", default)

    @property
    def contract_id(self) -> str:
        return f"{self.deployer}.{self.name}"

    @property
    def is_token(self) -> bool:
        return self.kind != OTHER

    def resolved_token_uri(self, metadata_url: str) -> str | None:
        """The URI the node returns: `{metadata}` filled in, SIP-016 `{id}` left as it is."""
        if self.token_uri is None:
            return None
        return self.token_uri.replace(METADATA_PLACEHOLDER, metadata_url.rstrip("/"))

    def metadata_path(self) -> str | None:
        """Path template (with `{id}`) this contract's documents have on the metadata host."""
        if self.token_uri is None or not self.token_uri.startswith(METADATA_PLACEHOLDER):
            return None
        return self.token_uri[len(METADATA_PLACEHOLDER) :].split("?", 1)[0]

    def has_token(self, token_id: int) -> bool:
        """Minted token ids: 1..last_token_id for NFTs, the listed ids for SFTs."""
        if self.kind == NFT:
            return 1 <= token_id <= self.last_token_id
        return self.kind == SFT and any(t.token_id == token_id for t in self.sft_tokens)


@dataclass(frozen=True)
class Scenario:
    """The whole simulated network: contracts, chain tip and metadata host latency."""

    contracts: tuple[Contract, ...]
    chain_tip_height: int
    network: str = "mainnet"
    metadata_latency_ms: int = 0
    metadata_jitter_ms: int = 0

    def __post_init__(self) -> None:
        _check(self.network in NETWORK_VERSIONS, f"unknown network {self.network!r}")
        _check(self.chain_tip_height >= 1, "chain_tip_height must be >= 1")
        _check(min(self.metadata_latency_ms, self.metadata_jitter_ms) >= 0, "negative latency")
        seen: set[str] = set()
        paths: dict[str, str] = {}
        for contract in self.contracts:
            self._check_contract(contract, seen, paths)

    def _check_contract(self, contract: Contract, seen: set[str], paths: dict[str, str]) -> None:
        where = f"contract {contract.contract_id}"
        _check(contract.contract_id not in seen, f"duplicate contract id {contract.contract_id}")
        seen.add(contract.contract_id)
        _check(
            contract.block_height <= self.chain_tip_height,
            f"{where}: block_height {contract.block_height} is above the chain tip "
            f"{self.chain_tip_height}",
        )
        version = c32_address_decode(contract.deployer)[0]
        _check(version in NETWORK_VERSIONS[self.network], f"{where}: not a {self.network} address")
        path = contract.metadata_path()
        if path is not None and not contract.failed:
            other = paths.setdefault(path, contract.contract_id)
            _check(other == contract.contract_id, f"{where}: metadata path {path} used by {other}")

    @classmethod
    def build(
        cls,
        contracts: Iterable[Contract],
        *,
        chain_tip_height: int | None = None,
        network: str = "mainnet",
        metadata_latency_ms: int = 0,
        metadata_jitter_ms: int = 0,
    ) -> Scenario:
        """A scenario from code; the tip defaults to the highest deploy height."""
        items = tuple(contracts)
        tip = chain_tip_height
        if tip is None:
            tip = max((c.block_height for c in items), default=1)
        return cls(items, tip, network, metadata_latency_ms, metadata_jitter_ms)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), source=str(path))

    @classmethod
    def packaged(cls, name: str = "default") -> Scenario:
        """One of the scenarios shipped in `devnet/scenarios/` (`default`, `e2e-200`)."""
        text = resources.files("devnet").joinpath("scenarios", f"{name}.json").read_text("utf-8")
        return cls.from_dict(json.loads(text), source=f"{name}.json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "scenario") -> Scenario:
        try:
            network = str(data.get("network", "mainnet"))
            contracts = [_contract_from_dict(item, network) for item in data["contracts"]]
            return cls.build(
                contracts,
                chain_tip_height=int(data["chain_tip_height"]),
                network=network,
                metadata_latency_ms=int(data.get("metadata_latency_ms", 0)),
                metadata_jitter_ms=int(data.get("metadata_jitter_ms", 0)),
            )
        except ScenarioError as error:
            raise ScenarioError(f"{source}: {error}") from error
        except (KeyError, TypeError, ValueError) as error:
            raise ScenarioError(f"{source}: malformed scenario: {error!r}") from error

    @cached_property
    def _by_id(self) -> dict[str, Contract]:
        return {contract.contract_id: contract for contract in self.contracts}

    def contract(self, contract_id: str) -> Contract | None:
        return self._by_id.get(contract_id)

    @property
    def token_contracts(self) -> tuple[Contract, ...]:
        return tuple(c for c in self.contracts if c.is_token and not c.failed)

    def with_contracts(self, *contracts: Contract) -> Scenario:
        """A copy with more contracts, the tip raised to cover them."""
        tip = max([self.chain_tip_height, *(c.block_height for c in contracts)])
        return dataclasses.replace(self, contracts=self.contracts + contracts, chain_tip_height=tip)


def deployer_address(seed: str, network: str = "mainnet") -> str:
    """A realistic, deterministic single-sig address: hash160 = sha256(seed)[:20]."""
    _check(network in NETWORK_VERSIONS, f"unknown network {network!r}")
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
_PLAIN_KEYS.add("last_token_id")
_CONTRACT_KEYS = _PLAIN_KEYS | {"name", "deployer", "deployer_seed", "kind", "block_height"}
_CONTRACT_KEYS |= {"token", "tokens", "collection"}


def _contract_from_dict(data: Mapping[str, Any], network: str) -> Contract:
    _check("name" in data and "kind" in data, f"contract without 'name' or 'kind': {data}")
    name = str(data["name"])
    unknown = set(data) - _CONTRACT_KEYS
    _check(not unknown, f"contract {name!r}: unknown keys {sorted(unknown)}")
    _check(
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
    return make_contract(
        data["kind"], name, int(data["block_height"]), deployer=deployer, **options
    )


def _collection_from_dict(data: Mapping[str, Any]) -> Collection:
    traits = data.get("attributes")
    pools = tuple((k, tuple(v)) for k, v in (traits or {}).items())
    return Collection(data["title"], data.get("description", ""), data.get("external_url"), pools)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)
