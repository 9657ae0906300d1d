"""The history import: on a cold start, the token contracts deployed so far become contract
jobs, fast, without walking every block; then the monitor follows block by block.

It scans the SBA database's deployments after the checkpoint (`chain_tip`) in batches of
whole blocks; each batch and its checkpoint commit together, so a restart resumes exactly
where it stopped and a contract is never imported twice. Tokens come from the contract jobs
(enumeration, SFT mint prints) and read current facts, so history's mints, notifications and
supply changes need no replay (docs/reference-differences.md#history-import).
Once caught up it remembers the last blocks, which switches the monitor to following.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from shared.chain.checkpoint import move_checkpoint, read_checkpoint, remember_blocks
from shared.chain.contract_import import store_token_contracts
from shared.stacks.api_db import (
    ChainBlock,
    StacksApiDatabase,
    block_at,
    canonical_blocks,
    chain_tip,
    next_deployment_batch,
)

# Blocks remembered when the import catches up: how deep a re-org right after it can be.
REMEMBERED_AT_CATCH_UP = 100


@dataclass
class ImportBatch:
    """What one batch did: the new contract jobs to dispatch once the batch is committed."""

    new_job_ids: list[int] = field(default_factory=list)
    checkpoint: ChainBlock | None = None


def import_history_batch(
    session: Session, chain: StacksApiDatabase, batch_size: int
) -> ImportBatch:
    """One batch under the chain lock the caller holds, read from one SBA snapshot."""
    checkpoint = read_checkpoint(session)
    # Before the first import the checkpoint has no block: start at height 0.
    after = checkpoint.block_height if checkpoint else -1
    with chain.snapshot() as conn:
        sba_tip = chain_tip(conn)
        if sba_tip is None or sba_tip.block_height <= after:
            return ImportBatch()
        upto, deployments = next_deployment_batch(conn, after, sba_tip.block_height, batch_size)
        block = sba_tip if upto == sba_tip.block_height else block_at(conn, upto)
        block = block or ChainBlock(upto, sba_tip.index_block_hash)
        caught_up = upto >= sba_tip.block_height
        recent = canonical_blocks(conn, after, upto, REMEMBERED_AT_CATCH_UP) if caught_up else []
    job_ids = store_token_contracts(session, deployments)
    move_checkpoint(session, block)
    if caught_up:
        remember_blocks(session, recent or [block])
    return ImportBatch(new_job_ids=job_ids, checkpoint=block)
