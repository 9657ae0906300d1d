"""NFT owners and mints (docs/chain-monitor.md#ownership).

Each block's mints, transfers and burns move `nft_ownership` rows; the row as it was before
the block is logged in `chain_ownership_changes`, so a re-org restores the state at the fork
point exactly. A collection whose tokens a contract job enumerated is queued in
`chain_ownership_imports`; the monitor reads its owners from history as of its checkpoint
(docs/chain-monitor.md#ownership-import). A re-org below that checkpoint drops them and
queues the collection again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.chain.checkpoint import remember_blocks
from shared.changes import Entry, entry, record
from shared.models import ChangeKind
from shared.sql_params import array_of, joined, json_rows
from shared.stacks.api_db import ChainBlock
from shared.stacks.chain_events import NFT_BURN, NFT_MINT, NftOwnershipEvent
from shared.stacks.nft_owners import TokenOwner

IMPORT_INSERT_BATCH = 10_000
_PENDING_SCAN = 1000  # pending collections looked at per step

# Each changed token's final state in the block. A token without a row is changed only by a
# mint: its other events are in the history an import will read. Returns each changed token
# with its state before and after, for its change-log entry.
_APPLY_BLOCK = text(
    """
    WITH changes AS (
      SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
      AS ch(principal text, asset_name text, token_number numeric, owner text,
            burned boolean, minted boolean, mint_address text, mint_tx_id text,
            mint_block_height integer, mint_time bigint)
    ), targets AS (
      SELECT t.id AS token_id, t.smart_contract_id, t.token_number, ch.principal, ch.owner,
             ch.burned,
             ch.minted, ch.mint_address, ch.mint_tx_id, ch.mint_block_height,
             to_timestamp(ch.mint_time) AS mint_timestamp,
             o.token_id IS NOT NULL AS existed, o.owner AS was_owner, o.burned AS was_burned,
             o.mint_address AS was_mint_address, o.mint_tx_id AS was_mint_tx_id,
             o.mint_block_height AS was_mint_block_height,
             o.mint_timestamp AS was_mint_timestamp
      FROM changes ch
      JOIN smart_contracts c ON c.principal = ch.principal AND c.sip = 'sip-009'
        AND c.non_fungible_token_name = ch.asset_name
      JOIN tokens t ON t.smart_contract_id = c.id AND t.token_number = ch.token_number
      LEFT JOIN nft_ownership o ON o.token_id = t.id
      WHERE ch.minted OR o.token_id IS NOT NULL
    ), logged AS (
      INSERT INTO chain_ownership_changes (block_height, token_id, existed, owner, burned,
        mint_address, mint_tx_id, mint_block_height, mint_timestamp)
      SELECT :height, token_id, existed, was_owner, was_burned, was_mint_address,
             was_mint_tx_id, was_mint_block_height, was_mint_timestamp
      FROM targets
      ON CONFLICT (block_height, token_id) DO NOTHING
    ), applied AS (
      INSERT INTO nft_ownership AS o (token_id, smart_contract_id, token_number, owner, burned,
        mint_address, mint_tx_id, mint_block_height, mint_timestamp)
      SELECT token_id, smart_contract_id, token_number, owner, burned,
             CASE WHEN minted THEN mint_address ELSE was_mint_address END,
             CASE WHEN minted THEN mint_tx_id ELSE was_mint_tx_id END,
             CASE WHEN minted THEN mint_block_height ELSE was_mint_block_height END,
             CASE WHEN minted THEN mint_timestamp ELSE was_mint_timestamp END
      FROM targets
      ON CONFLICT (token_id) DO UPDATE SET
        owner = EXCLUDED.owner, burned = EXCLUDED.burned, mint_address = EXCLUDED.mint_address,
        mint_tx_id = EXCLUDED.mint_tx_id, mint_block_height = EXCLUDED.mint_block_height,
        mint_timestamp = EXCLUDED.mint_timestamp
    )
    SELECT principal, token_number, existed, was_owner, was_burned, owner, burned, minted
    FROM targets
    ORDER BY smart_contract_id, token_number
    """
)

_PENDING_IMPORTS = text(
    """
    SELECT c.id, c.principal, c.non_fungible_token_name, COALESCE(c.token_count, 0) AS tokens,
           array_agg(i.id ORDER BY i.id) AS import_ids
    FROM chain_ownership_imports i
    JOIN smart_contracts c ON c.id = i.smart_contract_id
    WHERE i.block_height IS NULL
    GROUP BY c.id
    ORDER BY min(i.id)
    LIMIT :limit
    """
)

# A row that already exists is current: the monitor has kept it since its mint. Returns the
# rows inserted, for their change-log entries.
_INSERT_IMPORTED = text(
    """
    INSERT INTO nft_ownership (token_id, smart_contract_id, token_number, owner, burned,
      mint_address, mint_tx_id, mint_block_height, mint_timestamp)
    SELECT t.id, t.smart_contract_id, t.token_number, s.owner, s.burned, s.mint_address,
           s.mint_tx_id, s.mint_block_height, to_timestamp(s.mint_time)
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
      AS s(contract_id integer, token_number numeric, owner text, burned boolean,
           mint_address text, mint_tx_id text, mint_block_height integer, mint_time bigint)
    JOIN tokens t ON t.smart_contract_id = s.contract_id AND t.token_number = s.token_number
    ON CONFLICT (token_id) DO NOTHING
    RETURNING smart_contract_id, token_number, owner, burned
    """
)

_MARK_IMPORTED = text(
    f"""
    UPDATE chain_ownership_imports SET block_height = :height
    WHERE id = ANY({array_of(":ids", "integer")})
    """  # noqa: S608 - composed of constant SQL, values are bound
)

# Each row changed above the fork point goes back to its state before the first of those
# blocks; a row a mint created there goes away.
_RESTORE_CHANGED = text(
    """
    WITH earliest AS (
      SELECT DISTINCT ON (token_id) * FROM chain_ownership_changes
      WHERE block_height > :height
      ORDER BY token_id, block_height
    ), dropped AS (
      DELETE FROM nft_ownership o USING earliest e
      WHERE o.token_id = e.token_id AND NOT e.existed
      RETURNING o.token_id
    ), restored AS (
      UPDATE nft_ownership o
      SET owner = e.owner, burned = e.burned, mint_address = e.mint_address,
          mint_tx_id = e.mint_tx_id, mint_block_height = e.mint_block_height,
          mint_timestamp = e.mint_timestamp
      FROM earliest e
      WHERE o.token_id = e.token_id AND e.existed
      RETURNING o.token_id
    )
    SELECT (SELECT count(*) FROM dropped) + (SELECT count(*) FROM restored)
    """
)

# Imports made as of a block above the fork point read an orphaned history: their rows go and
# the collections are imported again as of the fork point.
_UNDO_IMPORTS = text(
    """
    WITH undone AS (
      UPDATE chain_ownership_imports SET block_height = NULL
      WHERE block_height > :height
      RETURNING smart_contract_id
    )
    DELETE FROM nft_ownership o USING tokens t
    WHERE o.token_id = t.id AND t.smart_contract_id IN (SELECT smart_contract_id FROM undone)
    """
)


@dataclass(frozen=True)
class PendingImport:
    smart_contract_id: int
    asset_identifier: str | None  # `principal::nft name`; None: the ABI declares no NFT
    import_ids: tuple[int, ...]


@dataclass
class PendingImports:
    """The collections one step imports, about `token_budget` tokens; `more`: others are
    queued for later steps."""

    collections: list[PendingImport] = field(default_factory=list)
    more: bool = False

    @property
    def asset_identifiers(self) -> list[str]:
        return [c.asset_identifier for c in self.collections if c.asset_identifier]


def pending_imports(session: Session, token_budget: int) -> PendingImports:
    """The oldest queued collections, as many as fit `token_budget` tokens (at least one)."""
    rows = session.execute(_PENDING_IMPORTS, {"limit": _PENDING_SCAN}).all()
    pending = PendingImports(more=len(rows) == _PENDING_SCAN)
    tokens = 0
    for row in rows:
        if pending.collections and tokens + row.tokens > token_budget:
            pending.more = True
            break
        tokens += row.tokens
        asset = f"{row.principal}::{row.non_fungible_token_name}"
        pending.collections.append(
            PendingImport(
                row.id, asset if row.non_fungible_token_name else None, tuple(row.import_ids)
            )
        )
    return pending


def import_owners(
    session: Session, checkpoint: ChainBlock, pending: PendingImports, owners: Sequence[TokenOwner]
) -> int:
    """Store the owners read as of `checkpoint` for tokens that have no row; returns how many."""
    if not pending.collections:
        return 0
    contract_of = {c.asset_identifier: c.smart_contract_id for c in pending.collections}
    principal_of = {
        c.smart_contract_id: c.asset_identifier.split("::")[0]
        for c in pending.collections
        if c.asset_identifier
    }
    block = (checkpoint.block_height, checkpoint.index_block_hash)
    stored = 0
    for start in range(0, len(owners), IMPORT_INSERT_BATCH):
        batch = owners[start : start + IMPORT_INSERT_BATCH]
        rows = json_rows(
            {
                "contract_id": contract_of[o.asset_identifier],
                "token_number": o.token_number,
                "owner": o.owner,
                "burned": o.burned,
                "mint_address": o.mint_address,
                "mint_tx_id": o.mint_tx_id,
                "mint_block_height": o.mint_block_height,
                "mint_time": o.mint_time,
            }
            for o in batch
        )
        inserted = session.execute(_INSERT_IMPORTED, {"rows": rows}).all()
        stored += len(inserted)
        record(
            session,
            (_owner_entry(principal_of[r.smart_contract_id], r, block, None) for r in inserted),
        )
    remember_blocks(session, [checkpoint])  # the import is undone with this block
    ids = [i for collection in pending.collections for i in collection.import_ids]
    session.execute(_MARK_IMPORTED, {"height": checkpoint.block_height, "ids": joined(ids)})
    return stored


@dataclass
class _TokenChange:
    """A token's state after a block's events, and its latest mint in the block if any."""

    owner: str | None = None
    burned: bool = False
    mint: NftOwnershipEvent | None = None


def apply_ownership(
    session: Session, block: ChainBlock, events: Sequence[NftOwnershipEvent]
) -> None:
    """Move the owners of stored tokens by one block's events (in chain order)."""
    changes: dict[tuple[str, str, int], _TokenChange] = {}
    for event in events:
        change = changes.setdefault(
            (event.contract_id, event.asset_name, event.token_number), _TokenChange()
        )
        change.owner, change.burned = event.recipient, event.kind == NFT_BURN
        if event.kind == NFT_MINT:
            change.mint = event
    if not changes:
        return
    rows = json_rows(
        {
            "principal": principal,
            "asset_name": asset_name,
            "token_number": token_number,
            "owner": change.owner,
            "burned": change.burned,
            "minted": change.mint is not None,
            "mint_address": change.mint.recipient if change.mint else None,
            "mint_tx_id": change.mint.position.tx_id if change.mint else None,
            "mint_block_height": change.mint.position.block_height if change.mint else None,
            "mint_time": change.mint.block_time if change.mint else None,
        }
        for (principal, asset_name, token_number), change in changes.items()
    )
    changed = session.execute(_APPLY_BLOCK, {"height": block.block_height, "rows": rows})
    at = (block.block_height, block.index_block_hash)
    record(
        session,
        (_owner_entry(row.principal, row, at, row.was_owner) for row in changed if _moved(row)),
    )


def _moved(row: Any) -> bool:
    """A token whose owner, burn or mint the block changed (a token given back to its owner
    within the block did not change)."""
    return (
        not row.existed
        or row.minted
        or row.owner != row.was_owner
        or bool(row.burned) != bool(row.was_burned)
    )


def _owner_entry(principal: str, row: Any, block: tuple[int, str], was: str | None) -> Entry:
    """`token_burned` or `owner_changed` for a token's new state; `was`: its previous owner."""
    number = int(row.token_number)
    if row.burned:
        details: dict[str, str | None] = {"from": was}
        return entry(ChangeKind.TOKEN_BURNED, principal, number, block=block, details=details)
    details = {"from": was, "to": row.owner}
    return entry(ChangeKind.OWNER_CHANGED, principal, number, block=block, details=details)


def undo_ownership_above(session: Session, height: int) -> int:
    """Owners as they were at `height` (before its blocks above are forgotten): returns how
    many rows changed back. Imports made above it are queued again."""
    restored = session.execute(_RESTORE_CHANGED, {"height": height}).scalar_one()
    session.execute(_UNDO_IMPORTS, {"height": height})
    return int(restored)
