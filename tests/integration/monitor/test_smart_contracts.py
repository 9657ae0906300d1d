"""Contract deployments and the chain tip, as canonical and non-canonical Stacks API rows
(docs/chain-monitor.md#deployments)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from devnet.scenario import fungible_token, nft_collection, plain_contract, semi_fungible_token
from shared.db import session_scope
from shared.indexing.contracts import load_contract, store_contract_tokens
from shared.indexing.tokens import TokenData, load_token, store_tokens_data
from shared.jobs.transitions import ClaimedJob, claim_job
from shared.models import Job, JobStatus, Sip, SmartContract, Token


def test_enqueues_valid_token_contract(chain, monitor, db, following) -> None:
    collection = nft_collection("monkeys", 3, 1)
    block = chain.deploy(collection)
    result = monitor.run()
    assert result.blocks == 1
    (message,) = monitor.broker.take()
    assert message.is_contract
    (job,) = db.jobs()
    assert (job.id, job.status) == (message.job_id, JobStatus.QUEUED)
    with session_scope(db.sessions) as s:
        stored = s.scalars(select(SmartContract)).one()
    assert (stored.principal, stored.sip) == (collection.contract_id, Sip.SIP_009)
    assert (stored.block_height, stored.index_block_hash) == (
        block.height,
        "0x" + block.index_block_hash.hex(),
    )
    assert stored.tx_index == 0


def test_every_token_standard_is_recognised(chain, monitor, db, following) -> None:
    block = chain.block()
    contracts = [
        nft_collection("monkeys", 3, 1),
        fungible_token("coin", 1, symbol="CN"),
        semi_fungible_token("items", 1, []),
    ]
    for contract in contracts:
        chain.deploy(contract, block)
    monitor.run()
    with session_scope(db.sessions) as s:
        rows = {p: sip for p, sip in s.execute(select(SmartContract.principal, SmartContract.sip))}
    assert rows == {
        contracts[0].contract_id: Sip.SIP_009,
        contracts[1].contract_id: Sip.SIP_010,
        contracts[2].contract_id: Sip.SIP_013,
    }
    assert len(monitor.broker.take()) == 3


def test_ignores_token_contract_from_a_failed_transaction(chain, monitor, db, following) -> None:
    chain.deploy(nft_collection("broken", 3, 1, failed=True))
    assert monitor.run().blocks == 1
    assert db.principals() == set()
    assert db.jobs() == []


def test_ignores_non_token_contract(chain, monitor, db, following) -> None:
    chain.deploy(plain_contract("market", 1))
    monitor.run()
    assert db.principals() == set()
    assert monitor.broker.take() == []


def test_rolls_back_contract(chain, monitor, db, following) -> None:
    collection = nft_collection("monkeys", 3, 1)
    block = chain.deploy(collection)
    monitor.run()
    with session_scope(db.sessions) as s:
        contract = s.scalars(select(SmartContract)).one()
        store_contract_tokens(s, load_contract(s, contract.id), 3, _claimed(s, contract.id))
    assert len(db.tokens(collection.contract_id)) == 3
    chain.orphan(block.height)
    chain.block()  # the new canonical block at that height
    result = monitor.run()
    assert result.rewinds == 1
    assert db.principals() == set()
    assert db.count(Token) == 0
    assert db.jobs() == []
    assert db.checkpoint()[0] == block.height


def test_contract_roll_back_handles_in_flight_contract_job(chain, monitor, db, following) -> None:
    block = chain.deploy(nft_collection("monkeys", 3, 1))
    monitor.run()
    with session_scope(db.sessions) as s:
        contract_id = s.scalars(select(SmartContract.id)).one()
        contract = load_contract(s, contract_id)
        job = _claimed(s, contract_id)
    chain.orphan(block.height)
    chain.block()
    monitor.run()
    with session_scope(db.sessions) as s:  # the job finishes after the re-org: nothing happens
        assert store_contract_tokens(s, contract, 3, job) == []
    assert db.count(Token) == 0


def test_contract_roll_back_handles_in_flight_token_jobs(chain, monitor, db, following) -> None:
    block = chain.deploy(nft_collection("monkeys", 1, 1))
    monitor.run()
    with session_scope(db.sessions) as s:
        contract_id = s.scalars(select(SmartContract.id)).one()
        store_contract_tokens(s, load_contract(s, contract_id), 1, _claimed(s, contract_id))
        token = load_token(s, s.scalars(select(Token.id)).one())
    chain.orphan(block.height)
    chain.block()
    monitor.run()
    with session_scope(db.sessions) as s:
        assert store_tokens_data(s, [(token, TokenData(uri="http://m.io/1.json"))]) == []
    assert db.count(Token) == 0


def test_updates_chain_tip_on_every_block(chain, monitor, db, following) -> None:
    chain.blocks_until(99)
    chain.deploy(plain_contract("market", 1))  # block 100
    monitor.run()
    assert db.checkpoint()[0] == 100
    block = chain.block()
    chain.print(block, plain_contract("market", 1).contract_id, b"\x01" + bytes(16))
    monitor.run()
    assert db.checkpoint() == (101, "0x" + block.index_block_hash.hex())


def _claimed(s: Session, contract_id: int) -> ClaimedJob:
    """The contract's job, as a worker holds it while it runs."""
    job_id = s.scalars(select(Job.id).where(Job.smart_contract_id == contract_id)).one()
    s.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.QUEUED))
    claimed = claim_job(s, job_id, timedelta(minutes=1))
    assert claimed is not None
    return claimed
