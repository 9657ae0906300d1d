"""The SBA reader on hand-written rows in the real Stacks API table layout (not the devnet's
seeder): JSON-string ABIs, failed deploys, forks and orphaned microblocks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine

from devnet.abis import sip009_abi
from shared.stacks.api_db import StacksApiDatabase, next_deployment_batch

SCHEMA = Path(__file__).resolve().parents[3] / "devnet" / "stacks-api-schema.sql"
ADDRESS = "SP2PABAF9FTAJYNFZH93XENAJ8FVY99RRM50D2JG9"
NFT_ABI = sip009_abi("monkey")


def block_hash(height: int, fork: int = 0) -> bytes:
    return bytes([fork, height]) * 16


class Sba:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def block(self, height: int, fork: int = 0, canonical: bool = True) -> None:
        h = block_hash(height, fork)
        self.conn.execute(
            "INSERT INTO blocks (index_block_hash, block_hash, block_height, burn_block_time,"
            " burn_block_hash, burn_block_height, miner_txid, parent_index_block_hash,"
            " parent_block_hash, parent_microblock_hash, parent_microblock_sequence, canonical,"
            " execution_cost_read_count, execution_cost_read_length, execution_cost_runtime,"
            " execution_cost_write_count, execution_cost_write_length)"
            " VALUES (%s, %s, %s, 0, %s, %s, %s, %s, %s, '', 0, %s, 0, 0, 0, 0, 0)",
            (h, h, height, h, height, h, block_hash(height - 1), h, canonical),
        )

    def deploy(
        self,
        name: str,
        height: int,
        abi: Any,
        *,
        fork: int = 0,
        canonical: bool = True,
        microblock_canonical: bool = True,
        status: int = 1,
        tx: int = 1,
    ) -> None:
        tx_id = bytes([tx]) * 32
        h = block_hash(height, fork)
        self.conn.execute(
            "INSERT INTO txs (tx_id, tx_index, raw_result, index_block_hash, block_hash,"
            " block_height, parent_block_hash, burn_block_time, parent_burn_block_time, type_id,"
            " anchor_mode, status, canonical, post_conditions, nonce, fee_rate, sponsored,"
            " sender_address, origin_hash_mode, event_count, execution_cost_read_count,"
            " execution_cost_read_length, execution_cost_runtime, execution_cost_write_count,"
            " execution_cost_write_length, raw_tx, microblock_canonical, microblock_sequence,"
            " microblock_hash, parent_index_block_hash, burn_block_height)"
            " VALUES (%s, 0, '', %s, %s, %s, %s, 0, 0, 1, 3, %s, %s, '', 0, 0, false, %s, 0, 0,"
            " 0, 0, 0, 0, 0, '', %s, 2147483647, '', %s, %s)",
            (tx_id, h, h, height, h, status, canonical, ADDRESS, microblock_canonical, h, height),
        )
        self.conn.execute(
            "INSERT INTO smart_contracts (tx_id, canonical, contract_id, block_height,"
            " index_block_hash, parent_index_block_hash, microblock_hash, microblock_sequence,"
            " microblock_canonical, source_code, abi)"
            " VALUES (%s, %s, %s, %s, %s, %s, '', 2147483647, %s, '', %s::jsonb)",
            (tx_id, canonical, f"{ADDRESS}.{name}", height, h, h, microblock_canonical, abi),
        )

    def tip(self, height: int) -> None:
        h = block_hash(height)
        self.conn.execute(
            "INSERT INTO chain_tip (block_height, block_count, block_hash, index_block_hash,"
            " burn_block_height, microblock_count, tx_count, tx_count_unanchored)"
            " VALUES (%s, %s, %s, %s, %s, 0, 0, 0)",
            (height, height, h, h, height),
        )


@pytest.fixture
def sba(stacks_api_database_url: str) -> Iterator[tuple[Sba, StacksApiDatabase]]:
    url = stacks_api_database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
        engine = create_engine(stacks_api_database_url)
        yield Sba(conn), StacksApiDatabase(engine)
        engine.dispose()


def test_reader_takes_only_canonical_successful_deploys_with_an_abi(sba) -> None:
    writer, reader = sba
    for height in range(1, 6):
        writer.block(height)
    writer.block(3, fork=1, canonical=False)
    abi = json.dumps(NFT_ABI)
    writer.deploy("plain", 2, abi, tx=1)
    writer.deploy("as-json-text", 2, json.dumps(abi), tx=2)  # ABI stored as a JSON string
    writer.deploy("failed-null", 3, "null", tx=3, status=-1)
    writer.deploy("failed-string-null", 3, '"null"', tx=4, status=-1)
    writer.deploy("orphaned", 3, abi, fork=1, canonical=False, tx=5)
    writer.deploy("orphaned-microblock", 4, abi, microblock_canonical=False, tx=6)
    writer.deploy("redeployed", 3, abi, fork=1, canonical=False, tx=7)
    writer.deploy("redeployed", 4, abi, tx=8)
    writer.tip(5)

    assert reader.chain_tip().block_height == 5
    with reader.snapshot() as conn:  # as the history import reads it
        upto, deployments = next_deployment_batch(conn, -1, 5, 500)
    assert upto == 5
    by_name = {d.contract_id.split(".")[1]: d for d in deployments}
    assert set(by_name) == {"plain", "as-json-text", "redeployed"}
    assert by_name["as-json-text"].abi == NFT_ABI
    assert by_name["redeployed"].block_height == 4
    assert by_name["redeployed"].tx_id == "0x" + "08" * 32
    assert by_name["plain"].sender_address == ADDRESS
    assert by_name["plain"].index_block_hash == "0x" + block_hash(2).hex()
    assert reader.block_at(3).index_block_hash == "0x" + block_hash(3).hex()
