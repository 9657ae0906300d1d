"""Where the index stands on the chain: the one checkpoint (`chain_tip`) shared by the history
import and the monitor, the lock that keeps a single writer, and the remembered blocks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.models import ChainTip, ProcessedBlock
from shared.stacks.api_db import ChainBlock

# Any constant works, as long as every process uses the same one (it was the importer's).
CHAIN_LOCK_KEY = 0x544D5F494D50  # "TM_IMP"


def try_chain_lock(session: Session) -> bool:
    """Hold the chain lock until this transaction ends; False if another process has it
    (e.g. a second beat started by mistake)."""
    locked = session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY}
    )
    return bool(locked.scalar())


def read_checkpoint(session: Session) -> ChainBlock | None:
    """The last block applied, locked for this transaction; None before the first import."""
    row = session.execute(
        select(ChainTip.block_height, ChainTip.index_block_hash).with_for_update()
    ).one()
    if row.index_block_hash is None:
        return None
    return ChainBlock(row.block_height, row.index_block_hash)


def move_checkpoint(session: Session, block: ChainBlock) -> None:
    session.execute(
        update(ChainTip).values(
            block_height=block.block_height,
            index_block_hash=block.index_block_hash,
            updated_at=func.now(),
        )
    )


def mark_checkpoint_unknown(session: Session) -> bool:
    """Note that the Stacks API database has no row for the checkpoint's block; True when it
    had one until now (the transition the monitor reports once)."""
    marked = session.execute(
        update(ChainTip)
        .where(ChainTip.checkpoint_unknown_since.is_(None))
        .values(checkpoint_unknown_since=func.now())
        .returning(ChainTip.id)
    )
    return marked.first() is not None


def clear_checkpoint_unknown(session: Session) -> datetime | None:
    """The database knows the checkpoint's block again: since when it did not (None: it
    always did). The caller holds the checkpoint row (`read_checkpoint`)."""
    since = session.scalar(select(ChainTip.checkpoint_unknown_since))
    if since is not None:
        session.execute(update(ChainTip).values(checkpoint_unknown_since=None))
    return since


def is_following(session: Session) -> bool:
    """True once the history import has caught up: from then on every block is applied."""
    return session.scalar(select(ProcessedBlock.block_height).limit(1)) is not None


def remember_blocks(session: Session, blocks: Sequence[ChainBlock]) -> None:
    if not blocks:
        return
    statement = insert(ProcessedBlock).values(
        [{"block_height": b.block_height, "index_block_hash": b.index_block_hash} for b in blocks]
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[ProcessedBlock.block_height],
            set_={"index_block_hash": statement.excluded.index_block_hash},
        )
    )


def forget_blocks(session: Session, *, upto: int | None = None, above: int | None = None) -> None:
    """Drop remembered blocks at or below `upto` (pruning) or above `above` (re-org)."""
    statement = delete(ProcessedBlock)
    if upto is not None:
        statement = statement.where(ProcessedBlock.block_height <= upto)
    if above is not None:
        statement = statement.where(ProcessedBlock.block_height > above)
    session.execute(statement)


def remembered_blocks(session: Session, below: int | None, limit: int) -> list[ChainBlock]:
    """Remembered blocks below a height (None: all), highest first."""
    query = select(ProcessedBlock.block_height, ProcessedBlock.index_block_hash)
    if below is not None:
        query = query.where(ProcessedBlock.block_height < below)
    rows = session.execute(query.order_by(ProcessedBlock.block_height.desc()).limit(limit))
    return [ChainBlock(row.block_height, row.index_block_hash) for row in rows]


def remembered_hashes_above(session: Session, height: int) -> list[str]:
    query = select(ProcessedBlock.index_block_hash).where(ProcessedBlock.block_height > height)
    return list(session.scalars(query))
