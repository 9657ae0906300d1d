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

from sqlalchemy import func, select

from devnet import chain_db
from devnet.chain_writer import Block
from devnet.scenario import deployer_address, nft_collection
from shared.db import session_scope
from shared.models import Change, ChangeKind, Job, NftOwnership, Token, UpdateNotification

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


def test_a_database_restored_behind_the_remembered_blocks_is_waited_for(
    chain, monitor, db, following, caplog
) -> None:
    """The issue's case: the new database's tip is below every block the index remembers,
    and it has no row for the checkpoint; the monitor used to fail every run."""
    nft = db.contract(tokens=0)
    script = history(nft)
    write(chain, script, 6)
    monitor.run(remembered_blocks=3)
    before = snapshot(db)

    restored = swap(chain)
    write(restored, script, 2)
    with caplog.at_level(logging.INFO, logger="shared.chain"):
        for _ in range(3):
            result = monitor.run(remembered_blocks=3)
            assert (result.blocks, result.rewinds) == (0, 0)
    assert db.checkpoint()[0] == 6
    assert snapshot(db) == before

    write(restored, script, 8)
    result = monitor.run(remembered_blocks=3)
    assert (result.blocks, result.rewinds) == (2, 0)
    assert db.checkpoint()[0] == 8
    assert sorted(db.tokens(nft)) == [1, 2, 3, 4, 5]
    assert owners(db, nft) == {1: BOB, 2: None, 3: ALICE, 4: BOB, 5: ALICE}


def test_a_replay_behind_the_checkpoint_neither_duplicates_nor_loses_tokens(
    chain, monitor, db, following
) -> None:
    nft = db.contract(tokens=0)
    script = history(nft)
    write(chain, script, 6)
    monitor.run()
    before = snapshot(db)

    replay = swap(chain)
    write(replay, script, 3)  # the replay has reached block 3 of 6
    result = monitor.run()
    assert (result.blocks, result.rewinds) == (0, 0)
    assert snapshot(db) == before

    write(replay, script, 6)  # caught up: the same blocks, the same hashes
    result = monitor.run()
    assert (result.blocks, result.rewinds) == (0, 0)
    assert snapshot(db) == before

    write(replay, script, 8)  # and new blocks after the checkpoint
    result = monitor.run()
    assert (result.blocks, result.rewinds) == (2, 0)
    after = snapshot(db)
    assert after["changes"][: len(before["changes"])] == before["changes"]
    assert ChangeKind.ROLLED_BACK not in {kind for _, kind in after["changes"]}
    assert after["tokens"][: len(before["tokens"])] == before["tokens"]
    assert sorted(db.tokens(nft)) == [1, 2, 3, 4, 5]
    assert sorted(db.tokens(FRESH.contract_id)) == [1]
    assert owners(db, nft) == {1: BOB, 2: None, 3: ALICE, 4: BOB, 5: ALICE}
