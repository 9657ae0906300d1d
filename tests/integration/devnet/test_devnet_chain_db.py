"""The simulated Stacks API database: what `seed` and `ChainWriter` write, on a real Postgres."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from devnet import chain_db
from devnet.__main__ import main
from devnet.chain_db import ANCHORED_SEQUENCE, ChainWriter, original_block
from devnet.nft_history import BURN, MINT, TRANSFER, holder_address
from devnet.scenario import Scenario, nft_collection
from shared.stacks.prints import nft_token_id

if TYPE_CHECKING:
    from conftest import Postgres

E2E = Scenario.packaged("e2e-200")
E2E_PATH = Path(__file__).parents[3] / "devnet" / "scenarios" / "e2e-200.json"


@pytest.fixture(scope="module")
def server(postgres: Postgres) -> str:
    """The test run's PostgreSQL server (tests/conftest.py), without a database."""
    return postgres.server_url


@pytest.fixture(scope="module")
def database_url(server: str) -> Iterator[str]:
    """A database of our own, seeded with e2e-200, dropped when the module is done."""
    url = f"{server}/devnet_test_{uuid.uuid4().hex[:8]}"
    chain_db.ensure_database(url)
    try:
        with chain_db.connect(url) as conn:
            chain_db.create_schema(conn)
            chain_db.seed(conn, E2E)
        yield url
    finally:
        chain_db.drop_database(url)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection whose changes are rolled back, so tests see the seeded chain."""
    with chain_db.connect(database_url) as connection:
        yield connection
        connection.rollback()


def scalar(conn: psycopg.Connection[Any], query: Any, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_blocks_cover_the_chain_and_link_to_their_parents(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT block_height, index_block_hash, parent_index_block_hash, block_hash,"
        " parent_block_hash, canonical FROM blocks ORDER BY block_height"
    ).fetchall()
    assert [row[0] for row in rows] == list(range(1, E2E.chain_tip_height + 1))
    assert all(row[5] for row in rows)
    assert len({bytes(row[1]) for row in rows}) == len(rows)
    for parent, child in itertools.pairwise(rows):
        assert child[2] == parent[1]
        assert child[4] == parent[3]
    assert all(len(row[1]) == 32 for row in rows)


def test_one_canonical_anchored_deploy_tx_per_contract(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT smart_contract_contract_id, type_id, canonical, microblock_canonical,"
        " microblock_hash, microblock_sequence, sender_address FROM txs"
    ).fetchall()
    assert sorted(row[0] for row in rows) == sorted(c.contract_id for c in E2E.contracts)
    for contract_id, type_id, canonical, mb_canonical, mb_hash, mb_sequence, sender in rows:
        assert (type_id, canonical, mb_canonical) == (6, True, True)
        assert (bytes(mb_hash), mb_sequence) == (b"", ANCHORED_SEQUENCE)
        assert contract_id.startswith(f"{sender}.")


def test_every_contract_row_joins_exactly_one_tx(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT sc.contract_id, count(t.id), min(t.block_height) = min(sc.block_height)"
        " FROM smart_contracts sc JOIN txs t ON t.tx_id = sc.tx_id"
        " AND t.index_block_hash = sc.index_block_hash AND t.microblock_hash = sc.microblock_hash"
        " WHERE sc.canonical AND sc.microblock_canonical GROUP BY sc.contract_id"
    ).fetchall()
    assert sorted(rows) == sorted((c.contract_id, 1, True) for c in E2E.contracts)


def test_failed_deploy_is_aborted_with_a_json_null_abi(conn: psycopg.Connection[Any]) -> None:
    (failed,) = [c for c in E2E.contracts if c.failed]
    status = scalar(
        conn, "SELECT status FROM txs WHERE smart_contract_contract_id = %s", failed.contract_id
    )
    assert status == -1
    abi_is_null = scalar(
        conn,
        "SELECT abi = 'null'::jsonb FROM smart_contracts WHERE contract_id = %s",
        failed.contract_id,
    )
    assert abi_is_null is True


def test_successful_deploys_store_their_abi(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT sc.contract_id, sc.abi, t.status FROM smart_contracts sc"
        " JOIN txs t USING (tx_id, index_block_hash, microblock_hash)"
        " WHERE sc.abi <> 'null'::jsonb"
    ).fetchall()
    abis = {contract_id.split(".")[1]: abi for contract_id, abi, _ in rows}
    assert sorted(abis) == ["e2e-monkeys", "e2e-registry"]
    assert {status for _, _, status in rows} == {1}
    assert abis["e2e-monkeys"]["non_fungible_tokens"] == [
        {"name": "e2e-monkeys", "type": "uint128"}
    ]
    assert abis["e2e-registry"]["non_fungible_tokens"] == []


def test_chain_tip_points_at_the_highest_block(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT ct.block_height, ct.block_count, ct.tx_count, b.block_hash = ct.block_hash"
        " FROM chain_tip ct JOIN blocks b ON b.index_block_hash = ct.index_block_hash"
    ).fetchall()
    tip = E2E.chain_tip_height
    assert rows == [(tip, tip, len(E2E.contracts), True)]
    stacks_tip = scalar(conn, "SELECT block_hash FROM chain_tip")
    assert stacks_tip == original_block(tip).block_hash  # what the node's /v2/info reports


def test_seeding_again_recreates_the_same_rows(database_url: str) -> None:
    with chain_db.connect(database_url) as conn:
        before = conn.execute("SELECT tx_id, index_block_hash FROM txs ORDER BY 1").fetchall()
        chain_db.create_schema(conn)
        chain_db.seed(conn, E2E)
        after = conn.execute("SELECT tx_id, index_block_hash FROM txs ORDER BY 1").fetchall()
        conn.rollback()
    assert before == after


def test_ensure_database_is_idempotent(database_url: str) -> None:
    """An existing database is kept as it is, whichever URL spelling names it."""
    with chain_db.connect(database_url) as conn:
        conn.execute("CREATE TABLE kept_by_ensure (n int)")
        conn.commit()
    chain_db.ensure_database(database_url)
    chain_db.ensure_database(database_url.replace("+psycopg", ""))
    with chain_db.connect(database_url) as conn:
        assert scalar(conn, "SELECT to_regclass('kept_by_ensure') IS NOT NULL") is True


def test_writer_appends_blocks_and_deploys(conn: psycopg.Connection[Any]) -> None:
    writer = ChainWriter(conn)
    assert writer.head is not None
    previous = writer.head
    block = writer.append_block()
    assert block.height == E2E.chain_tip_height + 1
    assert block.parent_index_block_hash == previous.index_block_hash
    tx_id = writer.deploy_contract(nft_collection("late-drop", 5, block.height), block)
    writer.set_tip()
    tip = conn.execute("SELECT block_height, index_block_hash FROM chain_tip").fetchone()
    assert tip == (block.height, block.index_block_hash)
    row = conn.execute(
        "SELECT t.tx_index, t.status, b.tx_count FROM txs t"
        " JOIN blocks b USING (index_block_hash) WHERE t.tx_id = %s",
        (tx_id,),
    ).fetchone()
    assert row == (0, 1, 1)


def test_mark_non_canonical_flips_a_block_and_its_rows(conn: psycopg.Connection[Any]) -> None:
    (collection,) = E2E.token_contracts
    writer = ChainWriter(conn)
    flipped = writer.mark_non_canonical(collection.block_height)
    assert flipped == 1
    canonical = scalar(
        conn,
        "SELECT bool_or(canonical) FROM smart_contracts WHERE contract_id = %s",
        collection.contract_id,
    )
    assert canonical is False
    assert scalar(conn, "SELECT count(*) FROM txs WHERE canonical") == 1


def test_a_fork_block_gets_new_hashes_and_the_canonical_parent(
    conn: psycopg.Connection[Any],
) -> None:
    writer = ChainWriter(conn)
    height = E2E.chain_tip_height
    writer.mark_non_canonical(height)
    fork = writer.append_block(height)
    hashes = conn.execute(
        "SELECT index_block_hash, canonical FROM blocks WHERE block_height = %s ORDER BY canonical",
        (height,),
    ).fetchall()
    assert [row[1] for row in hashes] == [False, True]
    assert hashes[1][0] == fork.index_block_hash != hashes[0][0]
    parent = scalar(conn, "SELECT index_block_hash FROM blocks WHERE block_height = %s", height - 1)
    assert fork.parent_index_block_hash == parent
    assert writer.append_block().height == height + 1


def test_cli_seed_creates_and_fills_a_database(server: str) -> None:
    url = f"{server}/devnet_test_{uuid.uuid4().hex[:8]}"
    try:
        assert main(["seed", "--database-url", url, "--scenario", str(E2E_PATH)]) == 0
        assert main(["seed", "--database-url", url]) == 0  # reseeding replaces the tables
        with chain_db.connect(url) as conn:
            default = Scenario.packaged("default")
            assert scalar(conn, "SELECT count(*) FROM smart_contracts") == len(default.contracts)
    finally:
        chain_db.drop_database(url)


def test_seeded_collections_have_their_mints_transfers_and_burns(
    conn: psycopg.Connection[Any],
) -> None:
    collection = nft_collection("punks", 3, 2, transfers=(1, 1), burns=(2,))
    chain_db.create_schema(conn)  # rolled back with the rest after the test
    chain_db.seed(conn, Scenario.build([collection], chain_tip_height=3))
    rows = conn.execute(
        "SELECT e.asset_event_type_id, e.value, e.sender, e.recipient, e.tx_index,"
        " e.event_index, e.canonical AND e.microblock_canonical, t.contract_call_function_name,"
        " t.sender_address FROM nft_events e JOIN txs t USING (tx_id, index_block_hash)"
        " WHERE e.asset_identifier = %s ORDER BY e.tx_index, e.event_index",
        (f"{collection.contract_id}::punks",),
    ).fetchall()
    deployer, first, second = (
        collection.deployer,
        holder_address(collection, 1, 1),
        holder_address(collection, 1, 2),
    )
    assert [(r[0], nft_token_id(bytes(r[1])), r[2], r[3]) for r in rows] == [
        (MINT, 1, None, deployer),
        (MINT, 2, None, deployer),
        (MINT, 3, None, deployer),
        (TRANSFER, 1, deployer, first),
        (TRANSFER, 1, first, second),
        (BURN, 2, deployer, None),
    ]
    assert [(r[4], r[5]) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (3, 0)]
    assert all(r[6] for r in rows)
    assert [(r[7], r[8]) for r in rows[3:]] == [
        ("transfer", deployer),
        ("transfer", first),
        ("burn", deployer),
    ]
    tx_count = scalar(conn, "SELECT tx_count FROM blocks WHERE block_height = 2")
    assert tx_count == 4
    assert scalar(conn, "SELECT count(*) FROM txs WHERE block_height = 2") == 4
