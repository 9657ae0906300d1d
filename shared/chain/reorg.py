"""Re-orgs: find the fork point among the remembered blocks and undo what the orphaned
blocks did, so no token from a block that is no longer canonical stays behind
(docs/chain-monitor.md#reorgs).

Rows created by a block carry its `index_block_hash`, so the undo deletes exactly those
(contracts cascade to their tokens, jobs, metadata and notifications; a deleted notification
makes the previous one current again). FT supply deltas are reversed from what was applied
(`chain_supply_deltas`), not recomputed from the orphaned rows, which may have changed since;
NFT owners go back to the rows logged before the orphaned blocks changed them
(docs/chain-monitor.md#ownership-reorgs). The change log gets `rolled_back` entries naming the
entries of the orphaned blocks (docs/change-feed.md#re-orgs).
Jobs in flight for deleted rows find nothing to write and finish harmlessly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Text, delete, text
from sqlalchemy.orm import Session

from shared.chain.checkpoint import (
    forget_blocks,
    move_checkpoint,
    remember_blocks,
    remembered_blocks,
    remembered_hashes_above,
)
from shared.chain.ownership import undo_ownership_above
from shared.changes import record_rollback
from shared.models import SmartContract, Token, UpdateNotification
from shared.sql_params import any_of
from shared.stacks.api_db import ChainBlock, StacksApiDatabase

log = logging.getLogger(__name__)

FORK_SEARCH_CHUNK = 200

_REVERSE_SUPPLY_DELTAS = text(
    """
    UPDATE tokens t SET total_supply = t.total_supply - d.delta, updated_at = NOW()
    FROM (SELECT token_id, sum(delta) AS delta FROM chain_supply_deltas
          WHERE block_height > :height GROUP BY token_id) d
    WHERE t.id = d.token_id AND t.total_supply IS NOT NULL
    """
)


class DeepReorgError(RuntimeError):
    """No canonical block to rewind to; the monitor tries again on its next run."""


@dataclass(frozen=True)
class Rewind:
    fork_point: ChainBlock
    orphaned_blocks: int
    contracts: int
    tokens: int
    notifications: int
    owners: int  # ownership rows changed back


def rewind_to_fork_point(session: Session, chain: StacksApiDatabase) -> Rewind:
    """Undo every applied block above the fork point and move the checkpoint there."""
    fork = find_fork_point(session, chain)
    rewind = undo_blocks_above(session, fork)
    log.warning(
        "re-org: rewound %d blocks to %d (%s): %d contracts, %d tokens, %d notifications,"
        " %d owners undone",
        rewind.orphaned_blocks,
        fork.block_height,
        fork.index_block_hash,
        rewind.contracts,
        rewind.tokens,
        rewind.notifications,
        rewind.owners,
    )
    return rewind


def find_fork_point(session: Session, chain: StacksApiDatabase) -> ChainBlock:
    """The highest remembered block that is still canonical. A re-org deeper than the
    memory rewinds to the canonical block below the oldest remembered one."""
    below: int | None = None
    while blocks := remembered_blocks(session, below, FORK_SEARCH_CHUNK):
        canonical = chain.canonical_among([block.index_block_hash for block in blocks])
        for block in blocks:
            if block.index_block_hash in canonical:
                return block
        below = blocks[-1].block_height
    fallback = chain.block_at(below - 1) if below is not None and below > 1 else None
    if fallback is None:
        raise DeepReorgError(
            f"no canonical block below the remembered ones (from {below}): a database of"
            " another chain? CHAIN_DATABASE_SWAP_POLICY=reimport imports its history"
            " (docs/chain-monitor.md#database-swap)"
        )
    log.error("re-org deeper than the remembered blocks: rewinding to %d", fallback.block_height)
    return fallback


def undo_blocks_above(session: Session, fork: ChainBlock) -> Rewind:
    """Undo the remembered blocks above `fork`, forget them, checkpoint at `fork`."""
    orphaned = remembered_hashes_above(session, fork.block_height)
    record_rollback(session, fork.block_height, orphaned)
    session.execute(_REVERSE_SUPPLY_DELTAS, {"height": fork.block_height})
    counts = [
        _delete_created(session, model, fork.block_height, orphaned)
        for model in (UpdateNotification, Token, SmartContract)
    ]
    # Before the blocks are forgotten: their ownership log goes with them.
    owners = undo_ownership_above(session, fork.block_height)
    forget_blocks(session, above=fork.block_height)
    remember_blocks(session, [fork])
    move_checkpoint(session, fork)
    return Rewind(fork, len(orphaned), counts[2], counts[1], counts[0], owners)


def _delete_created(
    session: Session,
    model: type[UpdateNotification] | type[Token] | type[SmartContract],
    height: int,
    orphaned: Sequence[str],
) -> int:
    hashes = any_of("hashes", orphaned, Text)
    result = session.execute(
        delete(model)
        .where(model.block_height > height, model.index_block_hash == hashes)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
