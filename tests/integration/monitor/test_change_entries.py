"""What the chain monitor, contract jobs and the admin import write to the change log, in
the transaction of the change itself (docs/change-feed.md#kinds)."""

from __future__ import annotations

import pytest
from support.changes import last_id, logged

from devnet.scenario import deployer_address, fungible_token, nft_collection
from shared.chain import monitor as monitor_module
from shared.chain.contract_import import import_contract
from shared.db import session_scope
from shared.indexing.contracts import load_contract, store_minted_tokens
from shared.jobs.transitions import ClaimedJob
from shared.models import ChangeKind, Job, Sip, SmartContract, Token
from shared.stacks.api_db import SftMint

ALICE = deployer_address("alice")
BOB = deployer_address("bob")
ADDED, OWNER, BURNED = ChangeKind.TOKEN_ADDED, ChangeKind.OWNER_CHANGED, ChangeKind.TOKEN_BURNED


def hex_hash(block) -> str:  # type: ignore[no-untyped-def]
    return "0x" + block.index_block_hash.hex()


def test_the_history_import_records_each_token_contract_added(chain, monitor, db) -> None:
    collection = nft_collection("monkeys", 3, 2)
    coin = fungible_token("coin", 2, symbol="CN")
    chain.block()
    block = chain.deploy(collection)
    chain.deploy(coin, block)
    monitor.run()
    entries = logged(db.sessions)
    assert sorted((e.key, e.details["token_type"]) for e in entries) == sorted(
        [
            (("contract_added", collection.contract_id, None), "nft"),
            (("contract_added", coin.contract_id, None), "ft"),
        ]
    )
    assert {(e.block_height, e.index_block_hash) for e in entries} == {
        (block.height, hex_hash(block))
    }


def test_a_deployment_followed_block_by_block_records_contract_added(
    chain, monitor, db, following
) -> None:
    collection = nft_collection("late", 2, 2)
    block = chain.deploy(collection)
    monitor.run()
    (added,) = logged(db.sessions)
    assert added.key == ("contract_added", collection.contract_id, None)
    assert (added.block_height, added.index_block_hash) == (block.height, hex_hash(block))


def test_mints_transfers_and_burns_record_tokens_and_owners(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=0)
    minted = chain.block()
    chain.mint_nft(minted, principal, 1, 2, recipient=ALICE)
    chain.transfer_nft(minted, principal, 1, ALICE, BOB)
    burned = chain.block()
    chain.burn_nft(burned, principal, 2, ALICE)
    chain.transfer_nft(burned, principal, 1, BOB, ALICE)
    chain.transfer_nft(burned, principal, 1, ALICE, BOB)  # back where it was: no change
    monitor.run()
    entries = logged(db.sessions)
    assert [(e.key, e.details) for e in entries] == [
        (("token_added", principal, 1), {"token_type": "nft"}),
        (("token_added", principal, 2), {"token_type": "nft"}),
        (("owner_changed", principal, 1), {"from": None, "to": BOB}),
        (("owner_changed", principal, 2), {"from": None, "to": ALICE}),
        (("token_burned", principal, 2), {"from": ALICE}),
    ]
    assert [e.block_height for e in entries] == [minted.height] * 4 + [burned.height]
    assert entries[-1].index_block_hash == hex_hash(burned)


def test_a_re_mint_records_no_second_token_added(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    chain.mint_nft(chain.block(), principal, 1)
    monitor.run()
    assert logged(db.sessions, ADDED) == []


def test_sft_mints_record_token_added(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_013)
    block = chain.block()
    chain.mint_sft(block, principal, (3, 1000), (3, 200))
    monitor.run()
    (added,) = logged(db.sessions)
    assert (added.key, added.details) == (("token_added", principal, 3), {"token_type": "sft"})
    assert added.block_height == block.height


def test_ft_supply_changes_record_the_new_supply(chain, monitor, db, following) -> None:
    principal = db.contract(Sip.SIP_010, tokens=1, total_supply=10_000)
    unknown = db.contract(Sip.SIP_010, tokens=1)  # never read: stays unknown, no entry
    netted = db.contract(Sip.SIP_010, tokens=1, total_supply=5)
    block = chain.block()
    chain.ft_supply(block, principal, minted=2000, burnt=500)
    chain.ft_supply(block, unknown, minted=2000)
    chain.ft_supply(block, netted, minted=7, burnt=7)
    monitor.run()
    (changed,) = logged(db.sessions)
    assert (changed.key, changed.details) == (
        ("supply_changed", principal, 1),
        {"total_supply": "11500"},
    )
    assert (changed.block_height, changed.index_block_hash) == (block.height, hex_hash(block))


def test_notifications_record_nothing_by_themselves(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=2)
    chain.notify(chain.block(), principal, update_mode="dynamic")
    monitor.run()
    assert len(monitor.broker.take()) == 2  # the refreshes' own entries come from their jobs
    assert logged(db.sessions) == []


def test_enumerated_tokens_are_added_with_their_contract_s_block(db) -> None:
    principal = db.contract(tokens=0)
    db.enumerate_tokens(principal, 3)
    entries = logged(db.sessions)
    assert [e.key for e in entries] == [("token_added", principal, n) for n in (1, 2, 3)]
    assert {(e.block_height, e.index_block_hash) for e in entries} == {(1, "0x000001")}


def test_an_sft_contract_job_records_the_tokens_it_creates(db) -> None:
    principal = db.contract(Sip.SIP_013)
    mints = [SftMint(n, 4, "0x04", "0xaa", 0, n) for n in (5, 6)]
    with session_scope(db.sessions) as s:
        contract_id = s.query(SmartContract.id).filter_by(principal=principal).scalar()
        job_id = s.query(Job.id).filter_by(smart_contract_id=contract_id).scalar()
        contract = load_contract(s, contract_id)
        assert contract is not None
        store_minted_tokens(s, contract, mints, ClaimedJob(job_id, None, contract_id, 0))
    entries = logged(db.sessions)
    assert [e.key for e in entries] == [
        ("token_added", principal, 5),
        ("token_added", principal, 6),
    ]
    assert {(e.block_height, e.index_block_hash) for e in entries} == {(4, "0x04")}


def test_the_ownership_import_records_each_imported_owner(chain, monitor, db) -> None:
    collection = nft_collection("monkeys", 3, 2)
    chain.block()
    chain.deploy(collection)  # 2
    minted = chain.block()
    asset = collection.name
    chain.mint_nft(minted, collection.contract_id, 1, 2, 3, recipient=ALICE, asset=asset)
    chain.burn_nft(chain.block(), collection.contract_id, 3, ALICE, asset=asset)
    checkpoint = chain.block()
    monitor.run()
    db.enumerate_tokens(collection.contract_id, 3)
    after = last_id(db.sessions)
    monitor.run()
    entries = logged(db.sessions, after=after)
    assert [(e.key, e.details) for e in entries] == [
        (("owner_changed", collection.contract_id, 1), {"from": None, "to": ALICE}),
        (("owner_changed", collection.contract_id, 2), {"from": None, "to": ALICE}),
        (("token_burned", collection.contract_id, 3), {"from": None}),
    ]
    assert {(e.block_height, e.index_block_hash) for e in entries} == {
        (checkpoint.height, hex_hash(checkpoint))
    }


def test_the_admin_import_records_a_new_contract_once(chain, monitor, db, following) -> None:
    coin = fungible_token("coin", 1, symbol="CN")
    block = chain.deploy(coin)
    for _ in range(2):
        with session_scope(db.sessions) as s:
            import_contract(s, monitor.chain, coin.contract_id)
    (added,) = logged(db.sessions)
    assert added.key == ("contract_added", coin.contract_id, None)
    assert added.block_height == block.height


def test_a_reorg_records_rolled_back_entries_naming_the_undone_ones(
    chain, monitor, db, following
) -> None:
    nft = db.contract(tokens=0)
    ft = db.contract(Sip.SIP_010, tokens=1, total_supply=1000)
    collection = nft_collection("fresh", 0, 1)
    chain.blocks_until(9)
    fork_point = chain.block()  # 10, stays canonical
    chain.mint_nft(fork_point, nft, 1, recipient=ALICE)
    chain.deploy(collection)  # 11
    b12 = chain.block()
    chain.mint_nft(b12, nft, 2, recipient=ALICE)
    chain.transfer_nft(b12, nft, 1, ALICE, BOB)
    chain.ft_supply(b12, ft, minted=500)
    monitor.run()
    before = {(e.kind, e.contract, e.token): e.id for e in logged(db.sessions)}

    chain.orphan(11, 12)
    chain.block()  # 11'
    b12_new = chain.deploy(collection)  # 12': the same deploy, in another block
    result = monitor.run()

    assert result.rewinds == 1
    undone = logged(db.sessions, ChangeKind.ROLLED_BACK)
    assert {(e.contract, e.token): e.details["undone"] for e in undone} == {
        (collection.contract_id, None): [
            before[(ChangeKind.CONTRACT_ADDED, collection.contract_id, None)]
        ],
        (nft, 1): [before[(OWNER, nft, 1)]],
        (nft, 2): [before[(ADDED, nft, 2)], before[(OWNER, nft, 2)]],
        (ft, 1): [before[(ChangeKind.SUPPLY_CHANGED, ft, 1)]],
    }
    assert min(e.id for e in undone) > max(before.values())
    (again,) = logged(db.sessions, ChangeKind.CONTRACT_ADDED, after=max(e.id for e in undone))
    assert (again.contract, again.block_height) == (collection.contract_id, b12_new.height)
    assert db.tokens(ft)[1].total_supply == 1000


def test_a_failed_monitor_step_leaves_no_entries(
    chain, monitor, db, following, monkeypatch
) -> None:
    principal = db.contract(tokens=0)
    chain.mint_nft(chain.block(), principal, 1, recipient=ALICE)

    def broken(*_args: object) -> None:
        raise RuntimeError("the step dies after applying its blocks")

    monkeypatch.setattr(monitor_module, "move_checkpoint", broken)
    with pytest.raises(RuntimeError):
        monitor.run()
    assert logged(db.sessions) == []
    assert db.count(Token) == 0
