"""NFT owners and mint facts kept by the monitor: block by block, through re-orgs, and from
history for collections a contract job enumerated (docs/chain-monitor.md#ownership)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, select

from devnet import chain_db
from devnet.chain_writer import GENESIS_TIME, Block
from devnet.nft_history import owner_of
from devnet.scenario import Scenario, deployer_address, nft_collection
from shared import clarity
from shared.db import session_scope
from shared.models import (
    AppliedOwnershipChange,
    NftOwnership,
    OwnershipImport,
    Sip,
    SmartContract,
)

ALICE = deployer_address("alice")
BOB = deployer_address("bob")
CAROL = deployer_address("carol")


def block_time(block: Block) -> datetime:
    return datetime.fromtimestamp(GENESIS_TIME + 600 * block.height, UTC)


def tx_hex(tx) -> str:  # type: ignore[no-untyped-def]
    return "0x" + tx.tx_id.hex()


def test_owner_follows_mint_transfer_and_burn(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=0)
    minted = chain.block()
    mint = chain.mint_nft(minted, principal, 1, recipient=ALICE)
    monitor.run()
    token = db.owners(principal)[1]
    assert (token.owner, token.burned) == (ALICE, False)
    assert (token.mint_address, token.mint_tx_id) == (ALICE, tx_hex(mint))
    assert (token.mint_block_height, token.mint_timestamp) == (minted.height, block_time(minted))

    chain.transfer_nft(chain.block(), principal, 1, ALICE, BOB)
    monitor.run()
    token = db.owners(principal)[1]
    assert (token.owner, token.burned, token.mint_address) == (BOB, False, ALICE)

    chain.burn_nft(chain.block(), principal, 1, BOB)
    monitor.run()
    token = db.owners(principal)[1]
    assert (token.owner, token.burned) == (None, True)
    assert (token.mint_address, token.mint_block_height) == (ALICE, minted.height)


def test_events_of_one_block_apply_in_chain_order(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=0)
    block = chain.block()
    chain.mint_nft(block, principal, 1, 2, recipient=ALICE)
    chain.transfer_nft(block, principal, 1, ALICE, BOB)
    chain.transfer_nft(block, principal, 1, BOB, CAROL)
    chain.burn_nft(block, principal, 2, ALICE)
    monitor.run()
    owners = db.owners(principal)
    assert (owners[1].owner, owners[1].burned, owners[1].mint_address) == (CAROL, False, ALICE)
    assert (owners[2].owner, owners[2].burned, owners[2].mint_address) == (None, True, ALICE)


def test_a_token_minted_again_after_a_burn_shows_its_new_mint(
    chain, monitor, db, following
) -> None:
    principal = db.contract(tokens=0)
    chain.mint_nft(chain.block(), principal, 1, recipient=ALICE)
    chain.burn_nft(chain.block(), principal, 1, ALICE)
    again = chain.block()
    chain.mint_nft(again, principal, 1, recipient=BOB)
    monitor.run()
    token = db.owners(principal)[1]
    assert (token.owner, token.burned) == (BOB, False)
    assert (token.mint_address, token.mint_block_height) == (BOB, again.height)


def test_events_of_tokens_not_stored_are_ignored(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=0)
    unknown = nft_collection("unknown", 0, 1).contract_id
    block = chain.block()
    chain.mint_nft(block, principal, 1, recipient=ALICE)
    chain.mint_nft(block, principal, clarity.Int(2), recipient=ALICE)  # not a uint: no token
    owner = clarity.principal_from_string(ALICE)
    tuple_id = clarity.ClarityTuple({"token-id": clarity.UInt(3), "owner": owner})
    chain.mint_nft(block, principal, tuple_id, recipient=ALICE)
    chain.mint_nft(block, unknown, 1, recipient=ALICE)
    chain.mint_nft(block, principal, 7, recipient=ALICE, asset="badge")  # not the contract's NFT
    chain.transfer_nft(block, principal, 9, ALICE, BOB)  # a token never stored
    monitor.run()
    assert db.checkpoint()[0] == block.height
    assert {n: o.owner for n, o in db.owners(principal).items()} == {1: ALICE}
    assert db.owners(unknown) == {}


def test_transfers_of_a_stored_token_without_a_row_wait_for_its_import(
    chain, monitor, db, following
) -> None:
    principal = db.contract(tokens=2)  # stored, its history not imported yet
    chain.transfer_nft(chain.block(), principal, 1, ALICE, BOB)
    monitor.run()
    assert db.owners(principal) == {}


def test_microblock_orphaned_events_are_ignored(chain, monitor, db, following, sba_conn) -> None:
    principal = db.contract(tokens=0)
    block = chain.block()
    chain.mint_nft(block, principal, 1, recipient=ALICE)
    orphaned = chain.transfer_nft(block, principal, 1, ALICE, BOB)
    sba_conn.execute(
        "UPDATE nft_events SET microblock_canonical = false WHERE tx_id = %s", (orphaned.tx_id,)
    )
    monitor.run()
    assert db.owners(principal)[1].owner == ALICE


def test_a_reorg_that_orphans_a_transfer_gives_the_token_back(
    chain, monitor, db, following
) -> None:
    principal = db.contract(tokens=0)
    kept = chain.block()
    chain.mint_nft(kept, principal, 1, 2, recipient=ALICE)
    orphaned = chain.block()
    chain.transfer_nft(orphaned, principal, 1, ALICE, BOB)
    chain.burn_nft(orphaned, principal, 2, ALICE)
    chain.transfer_nft(chain.block(), principal, 1, BOB, CAROL)
    monitor.run()
    assert db.owners(principal)[1].owner == CAROL
    chain.orphan(orphaned.height, orphaned.height + 1)
    chain.block()
    chain.block()
    result = monitor.run()
    assert result.rewinds == 1
    owners = db.owners(principal)
    assert (owners[1].owner, owners[1].burned, owners[1].mint_address) == (ALICE, False, ALICE)
    assert (owners[2].owner, owners[2].burned) == (ALICE, False)
    with session_scope(db.sessions) as s:
        assert set(s.scalars(select(AppliedOwnershipChange.block_height))) == {kept.height}


def test_a_reorg_that_orphans_a_mint_forgets_the_owner(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)  # enumerated before its mint
    orphaned = chain.block()
    chain.mint_nft(orphaned, principal, 1, recipient=ALICE)
    monitor.run()
    assert db.owners(principal)[1].owner == ALICE
    chain.orphan(orphaned.height)
    chain.block()
    monitor.run()
    assert sorted(db.tokens(principal)) == [1]
    assert db.owners(principal) == {}


def test_the_change_log_is_trimmed_with_the_remembered_blocks(
    chain, monitor, db, following
) -> None:
    principal = db.contract(tokens=0)
    chain.mint_nft(chain.block(), principal, 1, recipient=ALICE)
    owners = [ALICE, BOB]
    for n in range(5):
        chain.transfer_nft(chain.block(), principal, 1, owners[n % 2], owners[(n + 1) % 2])
    monitor.run(remembered_blocks=3)
    assert db.owners(principal)[1].owner == BOB
    assert db.count(AppliedOwnershipChange) == 3


def history(chain, collection):  # type: ignore[no-untyped-def]
    """A collection's history: deployed at 2, tokens 1-4 minted at 3, then transfers and a
    burn at 4 and 5; returns the mint block."""
    asset = collection.name
    chain.deploy(collection)  # 2
    minted = chain.block()  # 3
    chain.mint_nft(minted, collection.contract_id, 1, 2, 3, 4, recipient=ALICE, asset=asset)
    four = chain.block()
    chain.transfer_nft(four, collection.contract_id, 1, ALICE, BOB, asset=asset)
    chain.transfer_nft(four, collection.contract_id, 2, ALICE, BOB, asset=asset)
    five = chain.block()
    chain.transfer_nft(five, collection.contract_id, 1, BOB, CAROL, asset=asset)
    chain.burn_nft(five, collection.contract_id, 3, ALICE, asset=asset)
    return minted


def test_cold_start_sets_owners_from_each_tokens_latest_event(chain, monitor, db) -> None:
    collection = nft_collection("monkeys", 4, 2)
    chain.block()
    minted = history(chain, collection)
    chain.blocks_until(8)
    monitor.run()  # the history import, then following
    db.enumerate_tokens(collection.contract_id, 5)  # the contract job
    assert db.owners(collection.contract_id) == {}
    monitor.run()
    owners = db.owners(collection.contract_id)
    assert {n: (o.owner, o.burned) for n, o in owners.items()} == {
        1: (CAROL, False),
        2: (BOB, False),
        3: (None, True),
        4: (ALICE, False),
    }  # token 5 has no event: no row
    assert {o.mint_address for o in owners.values()} == {ALICE}
    assert {(o.mint_block_height, o.mint_timestamp) for o in owners.values()} == {
        (minted.height, block_time(minted))
    }
    with session_scope(db.sessions) as s:
        imported = s.scalars(select(OwnershipImport.block_height)).all()
    assert imported == [8]

    chain.transfer_nft(chain.block(), collection.contract_id, 4, ALICE, BOB, asset="monkeys")
    monitor.run()
    assert db.owners(collection.contract_id)[4].owner == BOB


def test_cold_start_ignores_orphaned_and_microblock_orphaned_events(
    chain, monitor, db, sba_conn
) -> None:
    collection = nft_collection("monkeys", 4, 2)
    chain.block()
    history(chain, collection)
    late = chain.block()  # 6
    chain.transfer_nft(late, collection.contract_id, 4, ALICE, BOB, asset="monkeys")
    dropped = chain.transfer_nft(late, collection.contract_id, 2, BOB, ALICE, asset="monkeys")
    sba_conn.execute(
        "UPDATE nft_events SET microblock_canonical = false WHERE tx_id = %s", (dropped.tx_id,)
    )
    orphaned = chain.block()  # 7
    chain.transfer_nft(orphaned, collection.contract_id, 4, BOB, CAROL, asset="monkeys")
    chain.orphan(orphaned.height)
    chain.block()  # 7'
    monitor.run()
    db.enumerate_tokens(collection.contract_id, 4)
    monitor.run()
    owners = db.owners(collection.contract_id)
    assert (owners[2].owner, owners[4].owner) == (BOB, BOB)


def test_an_import_newer_than_the_fork_point_is_made_again(chain, monitor, db) -> None:
    collection = nft_collection("monkeys", 4, 2)
    chain.block()
    history(chain, collection)  # 5: token 1 goes to CAROL
    chain.blocks_until(8)
    monitor.run()
    db.enumerate_tokens(collection.contract_id, 4)
    monitor.run()  # imported as of 8
    assert db.owners(collection.contract_id)[1].owner == CAROL
    chain.orphan(5, 6, 7, 8)
    chain.block()  # 5': token 1 stays with BOB
    chain.block()
    result = monitor.run()
    assert result.rewinds == 1
    owners = db.owners(collection.contract_id)
    assert {n: o.owner for n, o in owners.items()} == {1: BOB, 2: BOB, 3: ALICE, 4: ALICE}
    with session_scope(db.sessions) as s:
        imported = s.scalars(select(OwnershipImport.block_height)).all()
    assert imported == [4]  # the fork point


def test_large_collections_are_imported_over_several_steps(chain, monitor, db) -> None:
    collections = [nft_collection(f"c{n}", 3, 2) for n in range(3)]
    chain.block()
    deployed = chain.block()
    for collection in collections:
        chain.deploy(collection, deployed)
        chain.mint_nft(deployed, collection.contract_id, 1, 2, 3, asset=collection.name)
    monitor.run()
    for collection in collections:
        db.enumerate_tokens(collection.contract_id, 3)
    result = monitor.run(owner_import_tokens=4)  # one collection per step
    assert result.steps == 3
    assert [len(db.owners(c.contract_id)) for c in collections] == [3, 3, 3]


def test_only_nft_collections_with_tokens_are_queued(db) -> None:
    empty = db.contract(tokens=0)
    coin = db.contract(Sip.SIP_010)
    db.enumerate_tokens(empty, 0)
    db.enumerate_tokens(coin, 1)
    with session_scope(db.sessions) as s:
        assert s.scalar(select(func.count()).select_from(OwnershipImport)) == 0
        assert s.scalar(select(func.count()).select_from(NftOwnership)) == 0


def test_the_migration_queues_the_collections_already_stored(database_url, db) -> None:
    principal = db.contract(tokens=2)
    db.contract(Sip.SIP_010, tokens=1)
    config = Config(str(Path(__file__).resolve().parents[3] / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", database_url)
    command.downgrade(config, "0004")
    command.upgrade(config, "head")
    with session_scope(db.sessions) as s:
        queued = s.execute(
            select(SmartContract.principal, OwnershipImport.block_height).join(
                SmartContract, SmartContract.id == OwnershipImport.smart_contract_id
            )
        ).all()
    assert queued == [(principal, None)]


def test_the_devnet_history_gives_the_owners_its_node_reports(sba_conn, monitor, db) -> None:
    collection = nft_collection("monkeys", 6, 2, transfers=(1, 2, 1, 5), burns=(2, 6))
    chain_db.seed(sba_conn, Scenario.build([collection], chain_tip_height=4))
    monitor.run()
    db.enumerate_tokens(collection.contract_id, 6)
    monitor.run()
    owners = db.owners(collection.contract_id)
    assert {n: o.owner for n, o in owners.items()} == {
        n: owner_of(collection, n) for n in range(1, 7)
    }
    assert {n for n, o in owners.items() if o.burned} == {2, 6}
    assert {o.mint_address for o in owners.values()} == {collection.deployer}
