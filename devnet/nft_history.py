"""Who holds a simulated collection's tokens. Every token is minted to the deployer by the
deploy transaction; then the contract's `transfers` move tokens, one transaction each and in
order, each time to a new holder; then its `burns` destroy tokens. The seeded `nft_events`
and the node's `get-owner` both follow this history."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from devnet.contracts import Contract
from shared.c32 import c32_address, c32_address_decode

TRANSFER, MINT, BURN = 1, 2, 3  # nft_events.asset_event_type_id, as in the Stacks API


@dataclass(frozen=True)
class NftMove:
    """A transfer or burn after the mints; `sender` is the token's owner then."""

    kind: int
    token_id: int
    sender: str
    recipient: str | None  # None for a burn


def asset_identifier(contract: Contract) -> str:
    """The devnet's contracts name their NFT after themselves (see devnet.abis)."""
    return f"{contract.contract_id}::{contract.name}"


def holder_address(contract: Contract, token_id: int, hop: int) -> str:
    """The `hop`-th holder of a token after its minter, on the contract's network."""
    version = c32_address_decode(contract.deployer)[0]
    digest = hashlib.sha256(f"{contract.contract_id}/{token_id}/{hop}".encode()).digest()
    return c32_address(version, digest[:20])


def nft_moves(contract: Contract) -> list[NftMove]:
    """The contract's transfers, then its burns, in chain order."""
    owners: dict[int, str] = {}
    hops: dict[int, int] = {}
    moves = []
    for token_id in contract.transfers:
        sender = owners.get(token_id, contract.deployer)
        hops[token_id] = hops.get(token_id, 0) + 1
        owners[token_id] = holder_address(contract, token_id, hops[token_id])
        moves.append(NftMove(TRANSFER, token_id, sender, owners[token_id]))
    for token_id in contract.burns:
        moves.append(NftMove(BURN, token_id, owners.get(token_id, contract.deployer), None))
    return moves


def owner_of(contract: Contract, token_id: int) -> str | None:
    """The token's owner at the end of the history; None if never minted or burned."""
    if not contract.has_token(token_id) or token_id in contract.burns:
        return None
    hops = contract.transfers.count(token_id)
    return holder_address(contract, token_id, hops) if hops else contract.deployer
