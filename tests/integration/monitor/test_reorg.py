"""Re-orgs: blocks the monitor applied that stop being canonical are undone, the checkpoint
moves back to the fork point and the new canonical blocks are applied
(docs/chain-monitor.md#reorgs)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from devnet.scenario import nft_collection
from shared.chain.checkpoint import CHAIN_LOCK_KEY
from shared.db import session_scope
from shared.models import ChainTip, ProcessedBlock, Sip, SmartContract, Token, TokenUpdateMode


def hex_hash(block) -> str:  # type: ignore[no-untyped-def]
    return "0x" + block.index_block_hash.hex()


def test_a_three_block_reorg_undoes_contracts_notifications_mints_and_supply(
    chain, monitor, db, following
) -> None:
    nft = db.contract(tokens=2)
    ft = db.contract(Sip.SIP_010, tokens=1, total_supply=1000)
    sft = db.contract(Sip.SIP_013)
    collection = nft_collection("fresh", 0, 1)
    chain.blocks_until(9)
    fork_point = chain.block()  # 10, stays canonical
    chain.notify(fork_point, nft, update_mode="standard")
    chain.deploy(collection)  # 11
    b12 = chain.block()
    chain.mint_nft(b12, nft, 3)
    chain.mint_nft(b12, collection.contract_id, 1)
    chain.notify(b12, nft, update_mode="frozen")
    chain.ft_supply(b12, ft, minted=500)
    b13 = chain.block()
    chain.mint_sft(b13, sft, (7, 10))
    chain.notify(b13, nft, token_ids=[1], update_mode="dynamic")
    monitor.run()
    assert db.checkpoint() == (13, hex_hash(b13))
    assert sorted(db.tokens(nft)) == [1, 2, 3]
    assert sorted(db.tokens(collection.contract_id)) == [1]
    assert db.tokens(ft)[1].total_supply == 1500

    chain.orphan(11, 12, 13)
    chain.block()  # 11': empty
    b12_new = chain.deploy(collection)  # 12': the same deploy tx, in another block
    b13_new = chain.block()
    chain.mint_nft(b13_new, nft, 4)
    b14 = chain.block()
    result = monitor.run()

    assert result.rewinds == 1
    assert db.checkpoint() == (14, hex_hash(b14))
    with session_scope(db.sessions) as s:
        contract = s.scalars(
            select(SmartContract).where(SmartContract.principal == collection.contract_id)
        ).one()
        remembered = dict(
            s.execute(select(ProcessedBlock.block_height, ProcessedBlock.index_block_hash)).all()
        )
    assert (contract.block_height, contract.index_block_hash) == (12, hex_hash(b12_new))
    assert db.tokens(collection.contract_id) == {}
    assert sorted(db.tokens(nft)) == [1, 2, 4]
    assert db.tokens(ft)[1].total_supply == 1000
    assert db.tokens(sft) == {}
    latest = db.latest_notification(nft, 1)
    assert (latest.update_mode, latest.block_height) == (TokenUpdateMode.STANDARD, 10)
    assert remembered[10] == hex_hash(fork_point)
    assert remembered[12] == hex_hash(b12_new)


def test_a_reorg_to_a_shorter_chain_rewinds_to_the_fork_point(
    chain, monitor, db, following
) -> None:
    principal = db.contract(tokens=0)
    kept = chain.blocks_until(11)
    chain.mint_nft(chain.block(), principal, 1)
    chain.mint_nft(chain.block(), principal, 2)
    monitor.run()
    chain.orphan(12, 13)
    chain.writer.set_tip(kept)
    monitor.run()
    assert db.checkpoint() == (11, hex_hash(kept))
    assert db.tokens(principal) == {}


def test_a_reorg_deeper_than_the_memory_still_recovers(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=0)
    chain.blocks_until(10)
    for _ in range(5):  # 11-15
        chain.mint_nft(chain.block(), principal, chain.writer.head.height)
    monitor.run(remembered_blocks=3)  # remembers 13-15 only
    chain.orphan(11, 12, 13, 14, 15)
    for _ in range(6):
        tip = chain.block()
    result = monitor.run(remembered_blocks=3)
    assert result.rewinds == 1
    assert db.checkpoint() == (16, hex_hash(tip))
    # What the remembered blocks did is undone; the checkpoint falls back to the canonical
    # block below the oldest remembered one (12'). Rows of older orphaned blocks (11, 12)
    # cannot be found: a re-org must stay within `remembered_blocks` to be undone exactly.
    assert sorted(db.tokens(principal)) == [11, 12]


def test_one_monitor_at_a_time(chain, monitor, db, following, sessions) -> None:
    chain.deploy(nft_collection("monkeys", 1, 1))
    with sessions() as other, other.begin():
        other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
        blocked = monitor.run()
        assert (blocked.steps, blocked.blocks) == (1, 0)
    assert monitor.run().blocks == 1
    assert len(db.principals()) == 1


@pytest.mark.parametrize("blocks_before_reorg", [1, 3])
def test_tokens_of_orphaned_blocks_never_stay_behind(
    chain, monitor, db, following, blocks_before_reorg: int
) -> None:
    principal = db.contract(tokens=0)
    start = chain.writer.head.height
    for _ in range(blocks_before_reorg):
        chain.mint_nft(chain.block(), principal, chain.writer.head.height)
    monitor.run()
    chain.orphan(*range(start + 1, start + blocks_before_reorg + 1))
    chain.block()
    monitor.run()
    with session_scope(db.sessions) as s:
        heights = set(s.scalars(select(Token.block_height)))
        tip = s.scalars(select(ChainTip)).one()
    assert heights == set()
    assert tip.block_height == start + 1
