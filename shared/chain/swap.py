"""The Stacks API database swapped under a running index (docs/chain-monitor.md#database-swap).

Operators re-sync that database by an event replay, or restore it from a snapshot. Until the
new database has written the block the index stopped at, it has no row for it at all: not a
re-org (a re-org leaves the orphaned row, no longer canonical), so nothing is undone. The
monitor waits, says so once in its log and in `chain_tip.checkpoint_unknown_since` (the
metric `token_metadata_chain_checkpoint_unknown`), and goes on once the database has caught
up: from the checkpoint itself when the database has the same block there (a replay writes
the very same blocks), else like a re-org from the highest remembered block both agree on.

With `CHAIN_DATABASE_SWAP_POLICY=reimport` the index instead forgets where it stands and
imports the new database's history again (`forget_chain_position`).
"""

from __future__ import annotations

import enum
import logging

from sqlalchemy import and_, delete, func, text, update
from sqlalchemy.orm import Session

from shared.chain.checkpoint import clear_checkpoint_unknown, mark_checkpoint_unknown
from shared.jobs.table import TOKEN_JOBS
from shared.models import AppliedSupplyDelta, ChainTip, Job, ProcessedBlock
from shared.stacks.api_db import ChainBlock

log = logging.getLogger(__name__)


class SwapPolicy(enum.StrEnum):
    """What the monitor does when the database has no row for the checkpoint's block."""

    RESUME = "resume"  # wait for it, then go on from the highest block both agree on
    REIMPORT = "reimport"  # forget the position and import the database's history again


def wait_for_database(session: Session, checkpoint: ChainBlock, tip: ChainBlock | None) -> None:
    """The database is behind the checkpoint: note it (and log it) the first time only."""
    if not mark_checkpoint_unknown(session):
        log.debug("still waiting for the Stacks API database to reach %d", checkpoint.block_height)
        return
    log.warning(
        "the Stacks API database has no block %s (height %d, the checkpoint) and its tip is %s:"
        " not a re-org (re-synced or restored database?); waiting for it to catch up",
        checkpoint.index_block_hash,
        checkpoint.block_height,
        "none" if tip is None else tip.block_height,
    )


def database_caught_up(session: Session, checkpoint: ChainBlock) -> None:
    """The database is past the checkpoint's height again: end the wait, if there was one."""
    since = clear_checkpoint_unknown(session)
    if since is not None:
        log.warning(
            "the Stacks API database has reached the checkpoint's height %d again (waited since"
            " %s): following again",
            checkpoint.block_height,
            since.isoformat(),
        )


# Every stored NFT collection's owners are read from the new database's history again.
_REQUEUE_OWNERSHIP_IMPORTS = text(
    """
    WITH dropped AS (DELETE FROM nft_ownership)
    INSERT INTO chain_ownership_imports (smart_contract_id)
    SELECT c.id FROM smart_contracts c
    WHERE c.sip = 'sip-009' AND NOT EXISTS (
      SELECT 1 FROM chain_ownership_imports i
      WHERE i.smart_contract_id = c.id AND i.block_height IS NULL)
    """
)


def forget_chain_position(session: Session, checkpoint: ChainBlock) -> list[int]:
    """`reimport`: the index no longer knows where it stands in the chain. Returns the
    contract jobs due at once.

    The remembered blocks go (with the logs kept per block: applied supply deltas, owners
    before each block, owner imports), the checkpoint goes back before genesis, so the next
    steps run the history import over the new database: contracts it deploys that are not
    stored yet are stored. Every stored contract's job is pended again (tokens enumerated and
    read again) and every collection's owners are imported again. Nothing is deleted: rows
    the new database never had stay.
    """
    session.execute(delete(ProcessedBlock))  # cascades to the per-block logs
    session.execute(delete(AppliedSupplyDelta))
    session.execute(_REQUEUE_OWNERSHIP_IMPORTS)
    session.execute(
        update(ChainTip).values(
            block_height=1,
            index_block_hash=None,
            updated_at=func.now(),
            checkpoint_unknown_since=None,
        )
    )
    contract_jobs = and_(Job.smart_contract_id.is_not(None), Job.token_id.is_(None))
    due = TOKEN_JOBS.pend_again(session, contract_jobs)
    log.warning(
        "the Stacks API database has no block %s (height %d, the checkpoint):"
        " CHAIN_DATABASE_SWAP_POLICY=reimport, importing its history again (%d contract jobs"
        " pended again)",
        checkpoint.index_block_hash,
        checkpoint.block_height,
        len(due),
    )
    return due
