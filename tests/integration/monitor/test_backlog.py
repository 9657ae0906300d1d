"""A 5,000-block backlog is processed in bounded batches, resumably: a crash in the middle of
a batch and a restart apply nothing twice and skip nothing. Prints the rate in blocks/s."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, func, select

from devnet.chain_events import append_blocks
from devnet.scenario import nft_collection
from shared.chain import monitor as monitor_module
from shared.chain.monitor import MonitorSettings, advance
from shared.db import session_scope
from shared.jobs.runner import dispatch
from shared.models import ProcessedBlock, Sip, SmartContract, UpdateNotification
from shared.stacks.api_db import StacksApiDatabase
from shared.stacks.chain_events import BatchLimits

BACKLOG = 5000
BATCH = BatchLimits(max_blocks=500, max_txs=5000)


@dataclass
class Backlog:
    nft: str
    ft: str
    mints: int
    deploys: int
    supply: int
    notification_rows: int


def write_backlog(chain, db) -> Backlog:  # type: ignore[no-untyped-def]
    """Blocks 2..5001; every 10th mints an NFT, every 25th mints 3 FT units, every 50th
    deploys a collection, every 100th carries a contract-wide notification (applied before
    the block's mints: docs/chain-monitor.md#per-block)."""
    nft = db.contract(tokens=0)
    ft = db.contract(Sip.SIP_010, tokens=1, total_supply=1000)
    backlog = Backlog(nft, ft, 0, 0, 1000, 0)
    for block in append_blocks(chain.writer, BACKLOG):
        height = block.height
        if height % 10 == 0:
            chain.mint_nft(block, nft, height)
            backlog.mints += 1
        if height % 25 == 0:
            chain.ft_supply(block, ft, minted=3)
            backlog.supply += 3
        if height % 50 == 0:
            chain.deploy(nft_collection(f"c{height}", 0, 1), block)
            backlog.deploys += 1
        if height % 100 == 0:
            backlog.notification_rows += backlog.mints - 1  # every token minted before
            chain.notify(block, nft)
    return backlog


def check_applied_once(db, backlog: Backlog) -> None:  # type: ignore[no-untyped-def]
    assert db.checkpoint()[0] == BACKLOG + 1
    assert sorted(db.tokens(backlog.nft)) == list(range(10, BACKLOG + 2, 10))
    assert db.tokens(backlog.ft)[1].total_supply == backlog.supply
    assert db.count(SmartContract) == 2 + backlog.deploys
    assert db.count(UpdateNotification) == backlog.notification_rows


def test_a_backlog_survives_a_crash_and_a_restart(
    chain, monitor, db, following, settings, stacks_api_database_url, monkeypatch
) -> None:
    backlog = write_backlog(chain, db)
    params = MonitorSettings(limits=BATCH)
    checkpoints = [step_once(monitor, params) for _ in range(3)]
    assert checkpoints == [501, 1001, 1501]

    real_apply_block = monitor_module.apply_block

    def crash_in_block_1750(session, events, invalid_after):  # type: ignore[no-untyped-def]
        if events.block.block_height == 1750:
            raise ConnectionError("worker killed")
        return real_apply_block(session, events, invalid_after)

    monkeypatch.setattr(monitor_module, "apply_block", crash_in_block_1750)
    with pytest.raises(ConnectionError):
        step_once(monitor, params)
    assert db.checkpoint()[0] == 1501  # the whole batch rolled back with its checkpoint
    monkeypatch.setattr(monitor_module, "apply_block", real_apply_block)

    # A new process: its own engine and broker; it resumes from the checkpoint.
    engine = create_engine(stacks_api_database_url)
    restarted = type(monitor)(monitor.ctx, StacksApiDatabase(engine), monitor.broker, params)
    while restarted.run().blocks:
        pass
    engine.dispose()
    check_applied_once(db, backlog)
    with session_scope(db.sessions) as s:
        remembered = s.scalar(select(func.count()).select_from(ProcessedBlock))
    assert remembered == params.remembered_blocks  # the oldest are forgotten


def test_backlog_rate(chain, monitor, db, following) -> None:
    backlog = write_backlog(chain, db)
    started = time.perf_counter()
    result = monitor.run(limits=BATCH, time_budget_s=600)
    elapsed = time.perf_counter() - started
    assert result.blocks == BACKLOG
    assert result.steps == BACKLOG // BATCH.max_blocks
    check_applied_once(db, backlog)
    print(
        f"\nbacklog: {BACKLOG} blocks ({backlog.mints} NFT mints, {backlog.deploys} deploys, "
        f"{BACKLOG // 25} FT supply changes, {BACKLOG // 100} notifications) in {elapsed:.2f}s"
        f" = {BACKLOG / elapsed:.0f} blocks/s, {result.steps} batches"
    )


def step_once(monitor, params: MonitorSettings) -> int:  # type: ignore[no-untyped-def]
    """One monitor transaction, committed then dispatched; the checkpoint height after it."""
    with session_scope(monitor.ctx.sessions) as session:
        step = advance(session, monitor.chain, params)
    dispatch(monitor.ctx, step.job_ids)
    assert step.checkpoint is not None
    return step.checkpoint.block_height
