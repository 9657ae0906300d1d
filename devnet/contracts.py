"""The contracts a scenario describes: their kinds, metadata host behaviours and token facts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from shared.c32 import InvalidAddress, c32_address_decode, check_contract_name

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
DEFAULT_METADATA_ADDRESS = "127.0.0.1"  # the metadata host of contracts without one of their own
LOOPBACK_NETWORK = ipaddress.IPv4Network("127.0.0.0/8")
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
    # Read-only functions that answer (err u1) even when the rest of the contract works.
    erroring_functions: tuple[str, ...] = ()
    clarity_version: int | None = 2
    last_token_id: int = 0
    # NFT history after the mints (devnet.nft_history): token ids transferred, one transfer
    # each and in order, then token ids burned.
    transfers: tuple[int, ...] = ()
    burns: tuple[int, ...] = ()
    ft: FungibleToken | None = None
    sft_tokens: tuple[SftToken, ...] = ()
    collection: Collection = field(default_factory=lambda: Collection("", ""))
    # Loopback address of the metadata host serving this contract's documents (None: 127.0.0.1).
    metadata_host: str | None = None
    # Each token's own URI (token n's is the n-th), instead of `token_uri` with `{id}`: a
    # collection whose every document has its own IPFS CID (devnet/ipfs_gateway.py). Left
    # out of the hash: the node looks contracts up by hash on every call (`abi_for`).
    token_uris: tuple[str, ...] = field(default=(), hash=False)

    def __post_init__(self) -> None:
        where = f"contract {self.name!r}"
        if self.metadata_host is not None:
            check_loopback(self.metadata_host, f"{where}: metadata_host")
            check(
                self.metadata_path() is not None,
                f"{where}: metadata_host is set but token_uri does not start with "
                f"{METADATA_PLACEHOLDER}",
            )
        check(self.kind in KINDS, f"{where}: unknown kind {self.kind!r}, expected one of {KINDS}")
        check(self.behaviour in BEHAVIOURS, f"{where}: unknown behaviour {self.behaviour!r}")
        check(self.block_height >= 1, f"{where}: block_height must be >= 1")
        check(self.delay_ms >= 0 and self.last_token_id >= 0, f"{where}: negative number")
        check(self.kind != FT or self.ft is not None, f"{where}: sip-010 needs a 'token' object")
        ids = [token.token_id for token in self.sft_tokens]
        check(len(ids) == len(set(ids)), f"{where}: duplicate SFT token ids")
        moved = (*self.transfers, *self.burns)
        check(not moved or self.kind == NFT, f"{where}: only a sip-009 has transfers and burns")
        check(
            all(self.has_token(token_id) for token_id in moved),
            f"{where}: transfers and burns name tokens 1..last_token_id",
        )
        check(len(self.burns) == len(set(self.burns)), f"{where}: a token is burned twice")
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

    @property
    def metadata_address(self) -> str:
        """The loopback address whose metadata host serves this contract's documents."""
        return self.metadata_host or DEFAULT_METADATA_ADDRESS

    def metadata_base(self, metadata_url: str) -> str:
        """`metadata_url` (the default metadata host's URL, without a trailing slash) with its
        host name replaced by `metadata_host` when the contract has one; port and path kept."""
        base = metadata_url.rstrip("/")
        return base if self.metadata_host is None else with_host(base, self.metadata_host)

    def resolved_token_uri(self, metadata_url: str) -> str | None:
        """The URI the node returns: `{metadata}` filled in with `metadata_base(metadata_url)`,
        SIP-016 `{id}` left as it is."""
        if self.token_uri is None:
            return None
        return self.token_uri.replace(METADATA_PLACEHOLDER, self.metadata_base(metadata_url))

    def metadata_path(self) -> str | None:
        """Path template (with `{id}`) this contract's documents have on the metadata host."""
        if self.token_uri is None or not self.token_uri.startswith(METADATA_PLACEHOLDER):
            return None
        return self.token_uri[len(METADATA_PLACEHOLDER) :].split("?", 1)[0]

    def token_uri_of(self, token_id: int, metadata_url: str) -> str | None:
        """The URI the node returns for one token: its own when `token_uris` has one."""
        if 1 <= token_id <= len(self.token_uris):
            return self.token_uris[token_id - 1]
        return self.resolved_token_uri(metadata_url)

    def has_token(self, token_id: int) -> bool:
        """Minted token ids: 1..last_token_id for NFTs, the listed ids for SFTs."""
        if self.kind == NFT:
            return 1 <= token_id <= self.last_token_id
        return self.kind == SFT and any(t.token_id == token_id for t in self.sft_tokens)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)


def check_loopback(address: object, where: str) -> None:
    """Raise ScenarioError unless `address` is an IPv4 address (as text) inside 127.0.0.0/8."""
    message = f"{where}: {address!r} is not an IPv4 address inside {LOOPBACK_NETWORK}"
    check(isinstance(address, str), message)
    try:
        parsed = ipaddress.IPv4Address(str(address))
    except ipaddress.AddressValueError as error:
        raise ScenarioError(message) from error
    check(parsed in LOOPBACK_NETWORK, message)


def with_host(url: str, host: str) -> str:
    """`url` with its host name replaced by `host`, scheme, port and path kept."""
    parts = urlsplit(url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
