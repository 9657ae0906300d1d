"""NFT and SFT mints and FT supply changes, as event rows in the Stacks API database
(docs/chain-monitor.md#mints); a re-mint keeps fetched data
(docs/reference-differences.md#re-mints)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from support.builders import add_metadata

from devnet.chain_events import sft_mint
from devnet.scenario import nft_collection
from shared import clarity
from shared.chain.checkpoint import remembered_blocks
from shared.db import session_scope
from shared.models import Job, JobStatus, Metadata, Sip, Token, TokenType
from shared.queues import REFRESH_QUEUE, TOKENS_QUEUE


def test_nft_mint_enqueues_metadata_fetch(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=3)
    chain.blocks_until(99)
    block = chain.block()
    chain.mint_nft(block, principal, 4)
    monitor.run()
    tokens = db.tokens(principal)
    assert sorted(tokens) == [1, 2, 3, 4]
    minted = tokens[4]
    assert (minted.type, minted.block_height) == (TokenType.NFT, 100)
    assert minted.index_block_hash == "0x" + block.index_block_hash.hex()
    assert (minted.tx_index, minted.event_index) == (0, 0)
    (message,) = monitor.broker.take()
    assert (message.job_id, message.queue) == (db.token_job(principal, 4).id, TOKENS_QUEUE)


def test_nft_contract_can_start_with_zero_tokens(chain, monitor, db, following) -> None:
    collection = nft_collection("later", 0, 1)
    chain.blocks_until(89)
    chain.deploy(collection)  # 90
    monitor.run()
    monitor.broker.take()
    chain.blocks_until(99)
    chain.mint_nft(chain.block(), collection.contract_id, 1)
    monitor.run()
    assert sorted(db.tokens(collection.contract_id)) == [1]
    (message,) = monitor.broker.take()
    assert message.job_id == db.token_job(collection.contract_id, 1).id


def test_nft_mint_is_ignored_if_contract_does_not_exist(chain, monitor, db, following) -> None:
    chain.mint_nft(chain.block(), nft_collection("unknown", 0, 1).contract_id, 1)
    monitor.run()
    assert db.count(Token) == 0
    assert db.jobs() == []


def test_nft_mint_roll_back_removes_token(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=2)
    block = chain.block()
    chain.mint_nft(block, principal, 3)
    monitor.run()
    assert sorted(db.tokens(principal)) == [1, 2, 3]
    chain.orphan(block.height)
    chain.block()
    monitor.run()
    assert sorted(db.tokens(principal)) == [1, 2]
    assert len(db.jobs()) == 3


def test_only_uint_nft_ids_are_tokens(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=0)
    block = chain.block()
    owner = clarity.principal_from_string(principal.split(".")[0])
    chain.mint_nft(
        block, principal, clarity.ClarityTuple({"token-id": clarity.UInt(5), "owner": owner})
    )
    chain.mint_nft(block, principal, clarity.Int(6))
    chain.mint_nft(block, principal, 7, 7)  # a duplicate in one block counts once
    monitor.run()
    assert sorted(db.tokens(principal)) == [7]
    assert len(monitor.broker.take()) == 1


def test_a_re_mint_keeps_fetched_data_and_refreshes_it_later(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1, uri="http://m.io/1.json")
    with session_scope(db.sessions) as s:
        add_metadata(s, s.scalars(select(Token)).one(), name="Monkey #1")
    chain.mint_nft(chain.block(), principal, 1)
    monitor.run()
    token = db.tokens(principal)[1]
    assert token.uri == "http://m.io/1.json"
    assert db.count(Metadata) == 1
    (message,) = monitor.broker.take()
    assert message.queue == REFRESH_QUEUE


def test_an_invalid_token_is_re_fetched_by_a_mint_only_after_the_back_off(
    chain, monitor, db, following
) -> None:
    principal = db.contract(tokens=2, job_status=JobStatus.INVALID, invalid_reason=107)
    with session_scope(db.sessions) as s:  # token 2 became invalid two hours ago
        s.execute(update(Job).values(updated_at=Job.created_at))
        token_2 = s.scalars(select(Token.id).where(Token.token_number == 2)).one()
        s.execute(
            update(Job)
            .where(Job.token_id == token_2)
            .values(updated_at=Job.created_at - timedelta(hours=2))
        )
    chain.mint_nft(chain.block(), principal, 1, 2)
    monitor.run()
    assert db.token_job(principal, 1).status == JobStatus.INVALID
    (message,) = monitor.broker.take()
    assert message.job_id == db.token_job(principal, 2).id


def test_sft_mint_enqueues_minted_token_for_valid_contract(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_013)
    chain.mint_sft(chain.block(), principal, (3, 1000), (3, 200))
    monitor.run()
    tokens = db.tokens(principal)
    assert list(tokens) == [3]
    assert tokens[3].type == TokenType.SFT
    assert tokens[3].event_index == 0
    (message,) = monitor.broker.take()
    assert message.job_id == db.token_job(principal, 3).id


def test_sft_mint_printed_by_another_contract_is_ignored(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_013)
    other = nft_collection("other", 0, 1).contract_id
    tx = chain.call(chain.block(), other)
    chain.events.print_event(tx, other, sft_mint(3, 1, principal.split(".")[0]))
    monitor.run()
    assert db.tokens(principal) == {}


def test_rolls_back_sft_mint(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_013)
    block = chain.block()
    chain.mint_sft(block, principal, (3, 1000))
    monitor.run()
    chain.orphan(block.height)
    chain.block()
    monitor.run()
    assert db.tokens(principal) == {}
    assert len(db.jobs()) == 1


def test_ft_mints_adjust_token_supply_without_a_refresh(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_010, tokens=1, total_supply=10_000)
    chain.ft_supply(chain.block(), principal, minted=2000)
    monitor.run()
    assert db.tokens(principal)[1].total_supply == 12_000
    assert db.count(Token) == 1
    assert monitor.broker.take() == []
    assert db.jobs(JobStatus.PENDING) == db.jobs(JobStatus.QUEUED) == []


def test_ft_burns_adjust_token_supply_without_a_refresh(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_010, tokens=1, total_supply=10_000)
    chain.ft_supply(chain.block(), principal, burnt=2000)
    monitor.run()
    assert db.tokens(principal)[1].total_supply == 8000
    assert monitor.broker.take() == []
    assert db.jobs(JobStatus.PENDING) == db.jobs(JobStatus.QUEUED) == []


def test_ft_mints_and_burns_of_a_block_net_out(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_010, tokens=1, total_supply=10_000)
    block = chain.block()
    chain.ft_supply(block, principal, minted=500, burnt=200)
    chain.ft_supply(block, principal, minted=1)
    chain.ft_supply(chain.block(), principal, burnt=1000)
    monitor.run()
    assert db.tokens(principal)[1].total_supply == 9301


def test_unknown_supply_stays_unknown(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_010, tokens=1, processed=False)
    chain.ft_supply(chain.block(), principal, minted=2000)
    monitor.run()
    token = db.tokens(principal)[1]
    assert (token.total_supply, token.updated_at) == (None, None)


def test_rolled_back_supply_change_is_reversed(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_010, tokens=1, total_supply=10_000)
    kept = chain.block()
    chain.ft_supply(kept, principal, minted=5)
    orphaned = chain.block()
    chain.ft_supply(orphaned, principal, minted=2000, burnt=30)
    monitor.run()
    assert db.tokens(principal)[1].total_supply == 11_975
    chain.orphan(orphaned.height)
    chain.ft_supply(chain.block(), principal, burnt=100)  # the new canonical block
    monitor.run()
    assert db.tokens(principal)[1].total_supply == 9905
    with session_scope(db.sessions) as s:
        assert remembered_blocks(s, None, 1)[0].block_height == orphaned.height
