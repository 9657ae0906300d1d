"""The Stacks API database swapped under a running index: re-synced by an event replay or
restored from a snapshot, so for a while it has no row for the block the index stopped at
(docs/chain-monitor.md#database-swap).

The swap is done as an operator does it: the database's tables are dropped and created
again, and the same history is written again (the devnet's block hashes derive from the
height, so a replay writes the very same blocks, as a Stacks API event replay does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from api.metrics import _Gauges
from devnet import chain_db
from devnet.chain_writer import Block
from devnet.scenario import deployer_address, nft_collection
from shared.chain.reorg import DeepReorgError
from shared.chain.swap import SwapPolicy
from shared.db import session_scope
from shared.models import (
    Change,
    ChangeKind,
    Job,
    JobStatus,
    NftOwnership,
    OwnershipImport,
    Token,
    UpdateNotification,
)
from shared.reads.status import count_index

ALICE = deployer_address("alice")
BOB = deployer_address("bob")
CAROL = deployer_address("carol")
FRESH = nft_collection("fresh", 0, 1)

Script = dict[int, Callable[[Any, Block], Any]]


def history(nft: str) -> Script:
    """What each block does; written once, then written again into the new database."""
    return {
        2: lambda c, b: c.mint_nft(b, nft, 1, 2, recipient=ALICE),
        3: lambda c, b: (
            c.transfer_nft(b, nft, 1, ALICE, BOB),
            c.notify(b, nft, token_ids=[1], update_mode="standard"),
        ),
        4: lambda c, b: (c.mint_nft(b, nft, 3, recipient=CAROL), c.burn_nft(b, nft, 2, ALICE)),
        5: lambda c, b: c.writer.deploy_contract(FRESH, b),
        6: lambda c, b: c.mint_nft(b, nft, 4, recipient=BOB),
        # after the checkpoint: written only into the new database
        7: lambda c, b: (
            c.mint_nft(b, nft, 5, recipient=ALICE),
            c.transfer_nft(b, nft, 3, CAROL, ALICE),
        ),
        8: lambda c, b: c.mint_nft(b, FRESH.contract_id, 1, recipient=CAROL),
    }


def write(chain: Any, script: Script, upto: int) -> None:
    """Blocks after the chain's head up to `upto`, each doing what the script says."""
    head = chain.writer.head
    for height in range((head.height if head else 0) + 1, upto + 1):
        block = chain.block()
        if height in script:
            script[height](chain, block)


def swap(chain: Any) -> Any:
    """The Stacks API database emptied and made again, as a re-sync starts it; a writer of
    the new one."""
    chain_db.create_schema(chain.writer.conn)
    return type(chain)(chain.writer.conn)


def other_block(chain: Any) -> Block:
    """A block of another chain at the next height: its own hash (fork 1), with no row left
    for the block of fork 0 there."""
    height = chain.writer.head.height + 1 if chain.writer.head else 1
    chain.writer.append_block(height)
    chain.orphan(height)
    block = chain.writer.append_block(height)
    chain.writer.conn.execute("DELETE FROM blocks WHERE NOT canonical")
    chain.writer.set_tip(block)
    return block


def snapshot(db: Any) -> dict[str, Any]:
    """What the index holds: token rows (by id), owners, notifications, jobs, change log."""
    with session_scope(db.sessions) as s:
        return {
            "tokens": sorted(
                s.execute(select(Token.id, Token.smart_contract_id, Token.token_number)).all()
            ),
            "owners": sorted(
                s.execute(
                    select(NftOwnership.token_id, NftOwnership.owner, NftOwnership.burned)
                ).all()
            ),
            "notifications": s.scalar(select(func.count()).select_from(UpdateNotification)),
            "jobs": s.scalar(select(func.count()).select_from(Job)),
            "changes": sorted(s.execute(select(Change.id, Change.kind)).all()),
        }


def owners(db: Any, principal: str) -> dict[int, str | None]:
    return {number: row.owner for number, row in db.owners(principal).items()}


def waiting_gauge(db: Any) -> float:
    """`token_metadata_chain_checkpoint_unknown` as the API's /metrics exports it."""
    with session_scope(db.sessions) as s:
        families = list(_Gauges(count_index(s)).collect())
    (family,) = [f for f in families if f.name == "token_metadata_chain_checkpoint_unknown"]
    return family.samples[0].value


def said(caplog: pytest.LogCaptureFixture, words: str) -> int:
    """How many warnings of the monitor contain `words`."""
    return sum(
        words in record.getMessage()
        for record in caplog.records
        if record.name.startswith("shared.chain") and record.levelno == logging.WARNING
    )


WAITING = "not a re-org"
CAUGHT_UP = "following again"


def test_a_database_restored_behind_the_remembered_blocks_is_waited_for(
    chain, monitor, db, following, caplog
) -> None:
    """The issue's case: the new database's tip is below every block the index remembers and
    it has no row for the checkpoint; the monitor used to raise DeepReorgError on every run."""
    nft = db.contract(tokens=0)
    script = history(nft)
    write(chain, script, 6)
    monitor.run(remembered_blocks=3)
    before = snapshot(db)

    restored = swap(chain)
    write(restored, script, 2)
    caplog.set_level(logging.INFO, logger="shared.chain")
    for _ in range(3):
        result = monitor.run(remembered_blocks=3)  # no DeepReorgError
        assert (result.blocks, result.rewinds) == (0, 0)
        assert waiting_gauge(db) == 1
    assert said(caplog, WAITING) == 1
    assert db.checkpoint()[0] == 6
    assert snapshot(db) == before

    write(restored, script, 8)
    result = monitor.run(remembered_blocks=3)
    assert (result.blocks, result.rewinds) == (2, 0)
    assert waiting_gauge(db) == 0
    assert (said(caplog, WAITING), said(caplog, CAUGHT_UP)) == (1, 1)
    assert db.checkpoint()[0] == 8
    assert sorted(db.tokens(nft)) == [1, 2, 3, 4, 5]
    assert owners(db, nft) == {1: BOB, 2: None, 3: ALICE, 4: BOB, 5: ALICE}


def test_a_replay_behind_the_checkpoint_neither_duplicates_nor_loses_tokens(
    chain, monitor, db, following, caplog
) -> None:
    nft = db.contract(tokens=0)
    script = history(nft)
    write(chain, script, 6)
    monitor.run()
    before = snapshot(db)
    caplog.set_level(logging.INFO, logger="shared.chain")

    replay = swap(chain)
    assert monitor.run().blocks == 0  # an empty database: the replay has not started
    assert waiting_gauge(db) == 1
    write(replay, script, 3)  # the replay has reached block 3 of 6
    result = monitor.run()
    assert (result.blocks, result.rewinds) == (0, 0)
    assert waiting_gauge(db) == 1
    assert snapshot(db) == before

    write(replay, script, 6)  # caught up: the same blocks, the same hashes
    result = monitor.run()
    assert (result.blocks, result.rewinds) == (0, 0)
    assert waiting_gauge(db) == 0
    assert snapshot(db) == before

    write(replay, script, 8)  # and new blocks after the checkpoint
    result = monitor.run()
    assert (result.blocks, result.rewinds) == (2, 0)
    assert (said(caplog, WAITING), said(caplog, CAUGHT_UP)) == (1, 1)
    after = snapshot(db)
    # What the index held is untouched (same rows, same ids); blocks 7 and 8 added to it once.
    assert after["tokens"][: len(before["tokens"])] == before["tokens"]
    assert len(after["tokens"]) == len(before["tokens"]) + 2
    assert after["jobs"] == before["jobs"] + 2
    assert after["notifications"] == before["notifications"]
    assert after["changes"][: len(before["changes"])] == before["changes"]
    assert ChangeKind.ROLLED_BACK not in {kind for _, kind in after["changes"]}
    assert sorted(db.tokens(nft)) == [1, 2, 3, 4, 5]
    assert sorted(db.tokens(FRESH.contract_id)) == [1]
    assert owners(db, nft) == {1: BOB, 2: None, 3: ALICE, 4: BOB, 5: ALICE}


def test_the_database_dropped_and_created_again_under_the_monitor(
    postgres, stacks_api_database_url, chain, monitor, db, following, caplog
) -> None:
    """DROP DATABASE and CREATE DATABASE, as a re-sync from scratch does: the monitor's pooled
    connection dies with the old database (one run fails on it and the pool reconnects),
    then it waits and resumes as above."""
    nft = db.contract(tokens=0)
    script = history(nft)
    write(chain, script, 6)
    monitor.run()
    before = snapshot(db)
    caplog.set_level(logging.INFO, logger="shared.chain")

    chain.writer.conn.close()
    name = stacks_api_database_url.rsplit("/", 1)[1]
    postgres.drop(name)
    postgres.create(name)
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        chain_db.create_schema(conn)
        replay = type(chain)(conn)
        write(replay, script, 4)
        try:
            monitor.run()
        except OperationalError:  # the connection of the dropped database
            monitor.run()
        assert waiting_gauge(db) == 1
        assert snapshot(db) == before
        write(replay, script, 8)
        assert monitor.run().blocks == 2
    assert waiting_gauge(db) == 0
    assert (said(caplog, WAITING), said(caplog, CAUGHT_UP)) == (1, 1)
    assert snapshot(db)["tokens"][: len(before["tokens"])] == before["tokens"]
    assert sorted(db.tokens(nft)) == [1, 2, 3, 4, 5]
    assert owners(db, nft) == {1: BOB, 2: None, 3: ALICE, 4: BOB, 5: ALICE}


def test_a_database_whose_history_differs_is_rewound_to_the_highest_block_both_agree_on(
    chain, monitor, db, following, caplog
) -> None:
    """Not a replay: the new database has other blocks from height 5 (and no row for ours)."""
    nft = db.contract(tokens=0)
    script = history(nft)
    write(chain, script, 6)
    monitor.run()
    caplog.set_level(logging.INFO, logger="shared.chain")

    other = swap(chain)
    write(other, script, 4)
    assert monitor.run().blocks == 0  # behind: waits, as for a replay
    assert waiting_gauge(db) == 1
    for _ in range(3):  # 5'-7': no deploy, no mint of token 4
        other_block(other)
    result = monitor.run()
    assert result.rewinds == 1
    assert waiting_gauge(db) == 0
    assert db.checkpoint()[0] == 7
    assert said(caplog, "its history differs") == 1
    with session_scope(db.sessions) as s:
        kinds = set(s.scalars(select(Change.kind)))
    assert ChangeKind.ROLLED_BACK in kinds
    assert sorted(db.tokens(nft)) == [1, 2, 3]  # token 4 was minted by our block 6 only
    assert FRESH.contract_id not in db.principals()
    assert owners(db, nft) == {1: BOB, 2: None, 3: CAROL}


def test_reimport_forgets_the_position_and_imports_the_history_again(
    chain, monitor, db, following, caplog
) -> None:
    nft = db.contract(tokens=0)
    script = history(nft)
    write(chain, script, 6)
    monitor.run()
    before = snapshot(db)
    db.set_jobs(JobStatus.DONE)
    caplog.set_level(logging.INFO, logger="shared.chain")

    replay = swap(chain)
    write(replay, script, 3)
    monitor.run(swap_policy=SwapPolicy.REIMPORT)
    assert said(caplog, "importing its history again") == 1
    assert waiting_gauge(db) == 0
    assert db.checkpoint()[0] == 3  # the history import has reached the database's tip
    with session_scope(db.sessions) as s:
        contract_jobs = s.scalars(select(Job.status).where(Job.token_id.is_(None))).all()
        queued = s.scalars(select(OwnershipImport.smart_contract_id)).all()
    assert JobStatus.DONE not in contract_jobs  # every collection enumerated again
    assert queued  # and its owners read from the new history

    write(replay, script, 8)
    monitor.run(swap_policy=SwapPolicy.REIMPORT)
    assert db.checkpoint()[0] == 8
    after = snapshot(db)
    assert after["tokens"][: len(before["tokens"])] == before["tokens"]  # none duplicated
    assert sorted(db.tokens(nft)) == [1, 2, 3, 4, 5]
    assert sorted(db.tokens(FRESH.contract_id)) == [1]
    assert owners(db, nft) == {1: BOB, 2: None, 3: ALICE, 4: BOB, 5: ALICE}
    assert said(caplog, "importing its history again") == 1


def test_a_known_orphaned_checkpoint_is_still_a_reorg(chain, monitor, db, following) -> None:
    """The row is there, no longer canonical: the re-org path, not the wait."""
    nft = db.contract(tokens=0)
    write(chain, history(nft), 6)
    monitor.run()
    chain.orphan(6)
    chain.writer.set_tip(chain.writer.head)
    result = monitor.run()
    assert result.rewinds == 1
    assert waiting_gauge(db) == 0
    assert sorted(db.tokens(nft)) == [1, 2, 3]


def test_a_database_of_another_chain_from_genesis_is_still_an_error_under_resume(
    chain, monitor, db, following
) -> None:
    """Past the checkpoint, none of the remembered blocks, nothing below them (they go down
    to genesis): no block to resume from; the error names the setting that re-imports."""
    write(chain, {}, 3)
    monitor.run()
    other = swap(chain)
    for _ in range(4):
        other_block(other)
    with pytest.raises(DeepReorgError, match="CHAIN_DATABASE_SWAP_POLICY=reimport"):
        monitor.run()
