"""The chain monitor: follows the Stacks API database's canonical blocks after the checkpoint.

Each step is one transaction under the chain lock: read a bounded batch of blocks from one
SBA snapshot, apply every block's effects in chain order (deployments, SIP-019
notifications, NFT mints, SFT mints, FT supply: Hiro's API's order; NFT owners after the
mints), remember the blocks, move the checkpoint, re-pend due dynamic tokens; the caller
commits, then dispatches the jobs. Before the blocks, queued collections get their owners
as of the checkpoint, read from the same snapshot. When the block we stopped at is no longer
canonical, the same transaction first rewinds to the fork point; when the SBA database has no
row for it at all (re-synced or restored), the step waits for it instead (swap.py). Before
anything is remembered (cold start) a step is a batch of the history import instead. The
whole story: docs/chain-monitor.md.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from shared.chain.checkpoint import (
    forget_blocks,
    is_following,
    move_checkpoint,
    read_checkpoint,
    remember_blocks,
    try_chain_lock,
)
from shared.chain.contract_import import store_token_contracts
from shared.chain.importer import import_history_batch
from shared.chain.mints import apply_supply_deltas, store_mints
from shared.chain.notifications import apply_notification, refresh_dynamic_tokens
from shared.chain.ownership import (
    PendingImports,
    apply_ownership,
    import_owners,
    pending_imports,
)
from shared.chain.reorg import Rewind, rewind_to_fork_point
from shared.chain.swap import (
    SwapPolicy,
    database_caught_up,
    forget_chain_position,
    wait_for_database,
)
from shared.config import Settings
from shared.db import session_scope
from shared.jobs.runner import JobContext, dispatch
from shared.models import TokenType
from shared.stacks.api_db import ChainBlock, StacksApiDatabase
from shared.stacks.chain_events import (
    BatchLimits,
    BlockBatch,
    BlockEvents,
    CheckpointState,
    read_block_batch,
)
from shared.stacks.nft_owners import TokenOwner, latest_owners

log = logging.getLogger(__name__)

# The database has no row at all for the checkpoint's block (docs/chain-monitor.md#database-swap).
_SWAPPED = (CheckpointState.BEHIND, CheckpointState.UNKNOWN)


@dataclass(frozen=True)
class MonitorSettings:
    limits: BatchLimits = field(default_factory=BatchLimits)
    import_batch_size: int = 500  # deployments per history-import batch
    time_budget_s: float = 30.0  # per run; beat starts the next one
    remembered_blocks: int = 5000  # how deep a re-org can be undone exactly
    owner_import_tokens: int = 50_000  # tokens of queued collections imported per step
    dynamic_refresh_interval_s: int = 86_400
    invalid_retry_after: timedelta = timedelta(hours=1)
    # The database has no row for the checkpoint's block (docs/chain-monitor.md#database-swap).
    swap_policy: SwapPolicy = SwapPolicy.RESUME

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> MonitorSettings:
        return dataclasses.replace(
            cls(
                dynamic_refresh_interval_s=settings.metadata_dynamic_token_refresh_interval,
                invalid_retry_after=timedelta(
                    milliseconds=settings.job_queue_invalid_retry_after_ms
                ),
                swap_policy=SwapPolicy(settings.chain_database_swap_policy),
            ),
            **overrides,
        )


@dataclass
class Step:
    """What one transaction did; `job_ids` are dispatched once it has committed."""

    locked: bool = True
    caught_up: bool = True
    checkpoint: ChainBlock | None = None
    blocks: int = 0
    rewind: Rewind | None = None
    job_ids: list[int] = field(default_factory=list)


@dataclass
class FollowResult:
    steps: int = 0
    blocks: int = 0
    jobs: int = 0
    rewinds: int = 0
    checkpoint: ChainBlock | None = None

    def add(self, step: Step) -> None:
        self.steps += 1
        self.blocks += step.blocks
        self.jobs += len(step.job_ids)
        self.rewinds += step.rewind is not None
        self.checkpoint = step.checkpoint or self.checkpoint


def follow_chain(
    ctx: JobContext, chain: StacksApiDatabase, params: MonitorSettings
) -> FollowResult:
    """Step until caught up, out of time, or another process holds the chain lock."""
    deadline = time.monotonic() + params.time_budget_s
    result = FollowResult()
    while True:
        with session_scope(ctx.sessions) as session:
            step = advance(session, chain, params)
        dispatch(ctx, step.job_ids)
        result.add(step)
        if not step.locked or step.caught_up or time.monotonic() > deadline:
            return result


def advance(session: Session, chain: StacksApiDatabase, params: MonitorSettings) -> Step:
    """One step (caller commits): a history-import batch or a batch of blocks."""
    if not try_chain_lock(session):
        return Step(locked=False)
    if not is_following(session):
        batch = import_history_batch(session, chain, params.import_batch_size)
        done = batch.checkpoint is None  # nothing to import: the SBA has no newer tip
        return Step(caught_up=done, checkpoint=batch.checkpoint, job_ids=batch.new_job_ids)
    return _follow(session, chain, params)


def _follow(session: Session, chain: StacksApiDatabase, params: MonitorSettings) -> Step:
    checkpoint = read_checkpoint(session)
    assert checkpoint is not None  # noqa: S101 - remembered blocks imply a checkpoint
    rewind = None
    imports = pending_imports(session, params.owner_import_tokens)
    batch, owners = _read(chain, checkpoint, params.limits, imports)
    if batch.checkpoint in _SWAPPED and params.swap_policy is SwapPolicy.REIMPORT:
        job_ids = forget_chain_position(session, checkpoint)
        return Step(caught_up=False, job_ids=job_ids)
    if batch.checkpoint is CheckpointState.BEHIND:
        wait_for_database(session, checkpoint, batch.tip)
        return Step(checkpoint=checkpoint)
    database_caught_up(session, checkpoint)
    if not batch.checkpoint_canonical:
        if batch.checkpoint is CheckpointState.UNKNOWN:
            log.warning(
                "the Stacks API database has another block than the checkpoint's at height %d:"
                " its history differs, rewinding to the highest block both agree on",
                checkpoint.block_height,
            )
        rewind = rewind_to_fork_point(session, chain)
        checkpoint = rewind.fork_point
        imports = pending_imports(session, params.owner_import_tokens)
        batch, owners = _read(chain, checkpoint, params.limits, imports)
        if not batch.checkpoint_canonical:  # re-orged again meanwhile: next step
            return Step(caught_up=False, checkpoint=checkpoint, rewind=rewind)
    import_owners(session, checkpoint, imports, owners)
    job_ids = apply_batch(session, batch.blocks, params)
    last = batch.blocks[-1].block if batch.blocks else checkpoint
    tip_height = batch.tip.block_height if batch.tip else 0
    return Step(
        caught_up=(last.block_height >= tip_height or not batch.blocks) and not imports.more,
        checkpoint=last,
        blocks=len(batch.blocks),
        rewind=rewind,
        job_ids=job_ids,
    )


def _read(
    chain: StacksApiDatabase, checkpoint: ChainBlock, limits: BatchLimits, imports: PendingImports
) -> tuple[BlockBatch, list[TokenOwner]]:
    """The next blocks and, as of the checkpoint, the owners of the collections to import."""
    with chain.snapshot() as conn:
        batch = read_block_batch(conn, checkpoint, limits)
        if not batch.checkpoint_canonical:
            return batch, []
        assets = imports.asset_identifiers
        return batch, latest_owners(conn, assets, checkpoint.block_height)


def apply_batch(session: Session, blocks: list[BlockEvents], params: MonitorSettings) -> list[int]:
    """Apply the blocks in order, checkpoint the last; returns job ids to dispatch."""
    if not blocks:
        return []
    remember_blocks(session, [events.block for events in blocks])
    job_ids: list[int] = []
    for events in blocks:
        job_ids.extend(apply_block(session, events, params.invalid_retry_after))
    last = blocks[-1].block
    move_checkpoint(session, last)
    forget_blocks(session, upto=last.block_height - params.remembered_blocks)
    job_ids.extend(refresh_dynamic_tokens(session, params.dynamic_refresh_interval_s))
    log.info(
        "applied blocks %d-%d (%d jobs to dispatch)",
        blocks[0].block.block_height,
        last.block_height,
        len(job_ids),
    )
    return list(dict.fromkeys(job_ids))


def apply_block(session: Session, events: BlockEvents, invalid_after: timedelta) -> list[int]:
    """One block's effects, in Hiro's API's order (docs/chain-monitor.md#per-block)."""
    job_ids = store_token_contracts(session, events.deployments)
    block_time = events.block.time
    for notification in events.notifications:
        job_ids.extend(apply_notification(session, notification, block_time))
    for mints, token_type in ((events.nft_mints, TokenType.NFT), (events.sft_mints, TokenType.SFT)):
        job_ids.extend(store_mints(session, mints, token_type, invalid_after, block_time))
    apply_ownership(session, events.block, events.nft_ownership)
    apply_supply_deltas(session, events.block, events.supply_deltas)
    return job_ids
