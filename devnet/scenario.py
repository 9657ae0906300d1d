"""Typed, validated description of a simulated chain: which token contracts exist and how their
metadata hosts behave. Loaded from JSON (`devnet/scenarios/*.json`) or built in code."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from devnet.builders import (
    contract_from_dict,
    default_token_uri,
    deployer_address,
    fungible_token,
    make_contract,
    nft_collection,
    plain_contract,
    semi_fungible_token,
)
from devnet.contracts import (
    BEHAVIOURS,
    DEFAULT_METADATA_ADDRESS,
    FT,
    KINDS,
    METADATA_PLACEHOLDER,
    NETWORK_VERSIONS,
    NFT,
    OTHER,
    SFT,
    Collection,
    Contract,
    FungibleToken,
    ScenarioError,
    SftToken,
    Traits,
    check,
    check_loopback,
)
from shared.c32 import c32_address_decode

__all__ = [
    "BEHAVIOURS",
    "DEFAULT_METADATA_ADDRESS",
    "FT",
    "KINDS",
    "METADATA_PLACEHOLDER",
    "NETWORK_VERSIONS",
    "NFT",
    "OTHER",
    "SFT",
    "Collection",
    "Contract",
    "FungibleToken",
    "HostLatency",
    "Scenario",
    "ScenarioError",
    "SftToken",
    "Traits",
    "default_token_uri",
    "deployer_address",
    "fungible_token",
    "make_contract",
    "nft_collection",
    "plain_contract",
    "semi_fungible_token",
]


_HOST_KEYS = {"latency_ms", "jitter_ms"}


@dataclass(frozen=True)
class HostLatency:
    """How long the metadata host on one loopback address takes per request: `latency_ms`
    plus a deterministic jitter in +-`jitter_ms`."""

    address: str
    latency_ms: int = 0
    jitter_ms: int = 0

    def __post_init__(self) -> None:
        check_loopback(self.address, "metadata_hosts")
        check(
            min(self.latency_ms, self.jitter_ms) >= 0,
            f"metadata_hosts: negative latency for {self.address}",
        )

    @classmethod
    def from_dict(cls, address: str, data: Mapping[str, Any]) -> HostLatency:
        """One `"metadata_hosts"` entry: `{"latency_ms": 100, "jitter_ms": 20}`, both optional
        (0 when left out)."""
        check(isinstance(data, Mapping), f"metadata_hosts: {address} needs an object")
        unknown = set(data) - _HOST_KEYS
        check(not unknown, f"metadata_hosts: {address}: unknown keys {sorted(unknown)}")
        latency, jitter = int(data.get("latency_ms", 0)), int(data.get("jitter_ms", 0))
        return cls(address, latency, jitter)


@dataclass(frozen=True)
class Scenario:
    """The whole simulated network: contracts, chain tip and metadata host latency."""

    contracts: tuple[Contract, ...]
    chain_tip_height: int
    network: str = "mainnet"
    # Latency of every metadata host not listed in `metadata_hosts`.
    metadata_latency_ms: int = 0
    metadata_jitter_ms: int = 0
    # Side of the square PNG every token image is; 1 is a tiny placeholder, a few hundred
    # pixels makes the image cache do realistic decoding and resizing work.
    image_size_px: int = 1
    # Metadata hosts with a latency of their own, one entry per loopback address.
    metadata_hosts: tuple[HostLatency, ...] = ()
    # Requests a metadata host answers at once; one more is answered 429 without Retry-After,
    # as a small server behind a connection limit does. 0: no limit.
    metadata_capacity: int = 0

    def __post_init__(self) -> None:
        check(self.network in NETWORK_VERSIONS, f"unknown network {self.network!r}")
        check(self.chain_tip_height >= 1, "chain_tip_height must be >= 1")
        check(min(self.metadata_latency_ms, self.metadata_jitter_ms) >= 0, "negative latency")
        check(1 <= self.image_size_px <= 4096, "image_size_px must be 1..4096")
        check(self.metadata_capacity >= 0, "metadata_capacity must be >= 0")
        addresses = [host.address for host in self.metadata_hosts]
        duplicates = sorted({a for a in addresses if addresses.count(a) > 1})
        check(not duplicates, f"metadata_hosts: duplicate addresses {duplicates}")
        seen: set[str] = set()
        paths: dict[tuple[str, str], str] = {}
        for contract in self.contracts:
            self._check_contract(contract, seen, paths)

    def _check_contract(
        self, contract: Contract, seen: set[str], paths: dict[tuple[str, str], str]
    ) -> None:
        where = f"contract {contract.contract_id}"
        check(contract.contract_id not in seen, f"duplicate contract id {contract.contract_id}")
        seen.add(contract.contract_id)
        check(
            contract.block_height <= self.chain_tip_height,
            f"{where}: block_height {contract.block_height} is above the chain tip "
            f"{self.chain_tip_height}",
        )
        version = c32_address_decode(contract.deployer)[0]
        check(version in NETWORK_VERSIONS[self.network], f"{where}: not a {self.network} address")
        path = contract.metadata_path()
        if path is not None and not contract.failed:
            address = contract.metadata_address
            other = paths.setdefault((address, path), contract.contract_id)
            check(
                other == contract.contract_id,
                f"{where}: metadata path {path} on {address} used by {other}",
            )

    @classmethod
    def build(
        cls,
        contracts: Iterable[Contract],
        *,
        chain_tip_height: int | None = None,
        network: str = "mainnet",
        metadata_latency_ms: int = 0,
        metadata_jitter_ms: int = 0,
        image_size_px: int = 1,
        metadata_hosts: Iterable[HostLatency] = (),
        metadata_capacity: int = 0,
    ) -> Scenario:
        """A scenario from code; the tip defaults to the highest deploy height."""
        items = tuple(contracts)
        tip = chain_tip_height
        if tip is None:
            tip = max((c.block_height for c in items), default=1)
        return cls(
            items,
            tip,
            network,
            metadata_latency_ms=metadata_latency_ms,
            metadata_jitter_ms=metadata_jitter_ms,
            image_size_px=image_size_px,
            metadata_hosts=tuple(metadata_hosts),
            metadata_capacity=metadata_capacity,
        )

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
            contracts = [contract_from_dict(item, network) for item in data["contracts"]]
            return cls.build(
                contracts,
                chain_tip_height=int(data["chain_tip_height"]),
                network=network,
                metadata_latency_ms=int(data.get("metadata_latency_ms", 0)),
                metadata_jitter_ms=int(data.get("metadata_jitter_ms", 0)),
                image_size_px=int(data.get("image_size_px", 1)),
                metadata_hosts=_hosts_from_dict(data.get("metadata_hosts", {})),
                metadata_capacity=int(data.get("metadata_capacity", 0)),
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

    def latency_for(self, address: str) -> tuple[int, int]:
        """(latency_ms, jitter_ms) of the metadata host on `address`: its `metadata_hosts`
        entry, else the scenario-wide `metadata_latency_ms` and `metadata_jitter_ms`."""
        for host in self.metadata_hosts:
            if host.address == address:
                return host.latency_ms, host.jitter_ms
        return self.metadata_latency_ms, self.metadata_jitter_ms

    def metadata_addresses(self) -> tuple[str, ...]:
        """Every loopback address a metadata host serves: 127.0.0.1 first, then the addresses
        named by contracts or `metadata_hosts`, in numeric order, each once."""
        named = {c.metadata_address for c in self.contracts}
        named |= {host.address for host in self.metadata_hosts}
        named.discard(DEFAULT_METADATA_ADDRESS)
        return (DEFAULT_METADATA_ADDRESS, *sorted(named, key=ipaddress.IPv4Address))

    def with_contracts(self, *contracts: Contract) -> Scenario:
        """A copy with more contracts, the tip raised to cover them."""
        tip = max([self.chain_tip_height, *(c.block_height for c in contracts)])
        return dataclasses.replace(self, contracts=self.contracts + contracts, chain_tip_height=tip)


def _hosts_from_dict(data: Mapping[str, Any]) -> tuple[HostLatency, ...]:
    """`"metadata_hosts": {"127.0.0.2": {"latency_ms": 100, "jitter_ms": 20}, ...}`."""
    check(isinstance(data, Mapping), "metadata_hosts must be an object keyed by address")
    return tuple(HostLatency.from_dict(address, entry) for address, entry in data.items())
