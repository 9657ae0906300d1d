"""What the chain monitor reads for a batch of blocks, all from one snapshot of the SBA
database: the blocks after the checkpoint and, per block, the token contracts deployed, the
SIP-019 notifications, NFT and SFT mints, NFT transfers and burns and FT supply changes
(docs/chain-monitor.md#per-block)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from shared.stacks.api_db import (
    ChainBlock,
    DeployedContract,
    block_at,
    bytes_of,
    chain_tip,
    deployments,
    hex_of,
)
from shared.stacks.prints import (
    NOTIFICATION_MARKER,
    SFT_MINT_MARKER,
    MetadataUpdate,
    nft_token_id,
    parse_metadata_update,
    sft_mint_token_id,
)


@dataclass(frozen=True)
class EventPosition:
    block_height: int
    index_block_hash: str
    tx_id: str
    tx_index: int
    event_index: int


@dataclass(frozen=True)
class Notification:
    update: MetadataUpdate
    position: EventPosition


@dataclass(frozen=True)
class Mint:
    contract_id: str
    token_number: int
    position: EventPosition


# nft_events.asset_event_type_id
NFT_TRANSFER, NFT_MINT, NFT_BURN = 1, 2, 3


@dataclass(frozen=True)
class NftOwnershipEvent:
    """An NFT mint, transfer or burn of a `uint` id (docs/chain-monitor.md#ownership)."""

    kind: int  # NFT_TRANSFER, NFT_MINT or NFT_BURN
    contract_id: str
    asset_name: str
    token_number: int
    recipient: str | None  # the new owner (None for a burn)
    position: EventPosition
    block_time: int  # epoch seconds


@dataclass
class BlockEvents:
    """One canonical block and what it does to the index, each list in chain order."""

    block: ChainBlock
    deployments: list[DeployedContract] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    nft_mints: list[Mint] = field(default_factory=list)
    sft_mints: list[Mint] = field(default_factory=list)
    nft_ownership: list[NftOwnershipEvent] = field(default_factory=list)
    supply_deltas: dict[str, int] = field(default_factory=dict)  # FT contract -> minted - burnt


@dataclass(frozen=True)
class BatchLimits:
    """A batch ends after `max_blocks` blocks or once it holds `max_txs` transactions
    (whichever comes first; a block is never split)."""

    max_blocks: int = 500
    max_txs: int = 5000


class CheckpointState(enum.Enum):
    """What the SBA database says of the block we stopped at."""

    CANONICAL = "canonical"
    ORPHANED = "orphaned"  # a re-org: its row is there, no longer canonical
    # No row at all (docs/chain-monitor.md#database-swap): a re-synced or restored database
    # that has not written it yet (BEHIND: no canonical block at its height yet), or one whose
    # block at that height is another (UNKNOWN: its history differs).
    BEHIND = "behind"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BlockBatch:
    tip: ChainBlock | None  # the SBA's chain tip; None while it has none
    checkpoint: CheckpointState
    blocks: list[BlockEvents]

    @property
    def checkpoint_canonical(self) -> bool:
        return self.checkpoint is CheckpointState.CANONICAL


_IS_CANONICAL = text("SELECT canonical FROM blocks WHERE index_block_hash = :hash")

_NEXT_BLOCKS = text(
    "SELECT block_height, index_block_hash, tx_count,"
    " COALESCE(NULLIF(block_time, 0), burn_block_time) AS block_time FROM blocks"
    " WHERE canonical AND block_height > :after AND block_height <= :upto"
    " ORDER BY block_height LIMIT :limit"
)

# Only prints that can be a notification or an sft_mint are read (a substring test on the
# serialized value); the decoder decides.
_PRINTS = text(
    """
    SELECT l.block_height, l.index_block_hash, l.tx_id, l.tx_index, l.event_index,
           l.contract_identifier, l.value, t.sender_address
    FROM contract_logs l
    JOIN txs t ON t.tx_id = l.tx_id AND t.index_block_hash = l.index_block_hash
      AND t.microblock_hash = l.microblock_hash
    WHERE l.canonical AND l.microblock_canonical AND l.topic = 'print' AND t.status = 1
      AND l.block_height > :after AND l.block_height <= :upto
      AND (position(:notification IN l.value) > 0 OR position(:sft_mint IN l.value) > 0)
    ORDER BY l.block_height, l.microblock_sequence, l.tx_index, l.event_index
    """
)

# Mints, transfers and burns with their block's time: `block_time`, or the burn block's time
# where it is 0 (the column's default).
_NFT_EVENTS = text(
    """
    SELECT e.block_height, e.index_block_hash, e.tx_id, e.tx_index, e.event_index,
           e.asset_event_type_id, e.asset_identifier, e.value, e.recipient,
           COALESCE(NULLIF(b.block_time, 0), b.burn_block_time) AS block_time
    FROM nft_events e
    JOIN blocks b ON b.index_block_hash = e.index_block_hash
    WHERE e.canonical AND e.microblock_canonical AND e.asset_event_type_id IN (1, 2, 3)
      AND e.block_height > :after AND e.block_height <= :upto
    ORDER BY e.block_height, e.microblock_sequence, e.tx_index, e.event_index
    """
)

_SUPPLY_DELTAS = text(
    """
    SELECT block_height, index_block_hash, split_part(asset_identifier, '::', 1) AS contract_id,
           sum(CASE WHEN asset_event_type_id = 2 THEN amount ELSE -amount END) AS delta
    FROM ft_events
    WHERE canonical AND microblock_canonical AND asset_event_type_id IN (2, 3)
      AND block_height > :after AND block_height <= :upto
    GROUP BY block_height, index_block_hash, split_part(asset_identifier, '::', 1)
    """
)


def read_block_batch(conn: Connection, checkpoint: ChainBlock, limits: BatchLimits) -> BlockBatch:
    """The next blocks after `checkpoint` with their events (call inside one snapshot)."""
    tip = chain_tip(conn)
    state = checkpoint_state(conn, tip, checkpoint)
    if state is not CheckpointState.CANONICAL:
        return BlockBatch(tip, state, [])
    if tip is None:
        return BlockBatch(None, state, [])
    blocks = _next_blocks(conn, checkpoint.block_height, tip.block_height, limits)
    if not blocks:
        return BlockBatch(tip, state, [])
    by_height = {block.block_height: BlockEvents(block) for block in blocks}
    span = {"after": checkpoint.block_height, "upto": blocks[-1].block_height}
    for deployment in deployments(conn, span["after"], span["upto"]):
        events = _events(by_height, deployment.block_height, deployment.index_block_hash)
        if events is not None:
            events.deployments.append(deployment)
    _read_prints(conn, span, by_height)
    _read_nft_events(conn, span, by_height)
    for row in conn.execute(_SUPPLY_DELTAS, span):
        events = _events(by_height, row.block_height, hex_of(row.index_block_hash))
        if events is not None and row.delta:
            events.supply_deltas[row.contract_id] = int(row.delta)
    return BlockBatch(tip, state, list(by_height.values()))


def checkpoint_state(
    conn: Connection, tip: ChainBlock | None, checkpoint: ChainBlock
) -> CheckpointState:
    canonical = conn.execute(_IS_CANONICAL, {"hash": bytes_of(checkpoint.index_block_hash)})
    match canonical.scalar():
        case True:
            return CheckpointState.CANONICAL
        case False:
            return CheckpointState.ORPHANED
    height = checkpoint.block_height
    if tip is None or tip.block_height < height or block_at(conn, height) is None:
        return CheckpointState.BEHIND
    return CheckpointState.UNKNOWN


def _next_blocks(conn: Connection, after: int, upto: int, limits: BatchLimits) -> list[ChainBlock]:
    """Consecutive canonical blocks after `after`, within the limits (at least one)."""
    rows = conn.execute(_NEXT_BLOCKS, {"after": after, "upto": upto, "limit": limits.max_blocks})
    blocks: list[ChainBlock] = []
    txs = 0
    for row in rows:
        if row.block_height != after + len(blocks) + 1:
            break  # a gap: the API has not written that block yet
        txs += row.tx_count or 0
        if blocks and txs > limits.max_txs:
            break
        time = datetime.fromtimestamp(row.block_time, UTC) if row.block_time else None
        blocks.append(ChainBlock(row.block_height, hex_of(row.index_block_hash), time))
    return blocks


def _read_prints(conn: Connection, span: dict[str, int], by_height: dict[int, BlockEvents]) -> None:
    markers = {"notification": NOTIFICATION_MARKER, "sft_mint": SFT_MINT_MARKER}
    for row in conn.execute(_PRINTS, span | markers):
        events = _events(by_height, row.block_height, hex_of(row.index_block_hash))
        if events is None:
            continue
        value = bytes(row.value)
        position = _position(row)
        update = parse_metadata_update(value, row.contract_identifier, row.sender_address)
        if update is not None:
            events.notifications.append(Notification(update, position))
            continue
        token_number = sft_mint_token_id(value)
        if token_number is not None:  # only the token contract's own prints count
            events.sft_mints.append(Mint(row.contract_identifier, token_number, position))
    for events in by_height.values():
        # A token minted twice in one block is created once.
        events.sft_mints = _first_of_each(events.sft_mints)


def _read_nft_events(
    conn: Connection, span: dict[str, int], by_height: dict[int, BlockEvents]
) -> None:
    for row in conn.execute(_NFT_EVENTS, span):
        events = _events(by_height, row.block_height, hex_of(row.index_block_hash))
        token_number = nft_token_id(bytes(row.value))
        if events is None or token_number is None:
            continue
        contract_id, _, asset_name = row.asset_identifier.partition("::")
        position = _position(row)
        kind = row.asset_event_type_id
        if kind == NFT_MINT:
            events.nft_mints.append(Mint(contract_id, token_number, position))
        recipient = None if kind == NFT_BURN else row.recipient
        events.nft_ownership.append(
            NftOwnershipEvent(
                kind, contract_id, asset_name, token_number, recipient, position, row.block_time
            )
        )
    for events in by_height.values():
        events.nft_mints = _first_of_each(events.nft_mints)


def _first_of_each(mints: Iterable[Mint]) -> list[Mint]:
    first: dict[tuple[str, int], Mint] = {}
    for mint in mints:
        first.setdefault((mint.contract_id, mint.token_number), mint)
    return list(first.values())


def _events(by_height: dict[int, BlockEvents], height: int, block_hash: str) -> BlockEvents | None:
    events = by_height.get(height)
    return events if events is not None and events.block.index_block_hash == block_hash else None


def _position(row: Any) -> EventPosition:
    return EventPosition(
        block_height=row.block_height,
        index_block_hash=hex_of(row.index_block_hash),
        tx_id=hex_of(row.tx_id),
        tx_index=row.tx_index,
        event_index=row.event_index,
    )
