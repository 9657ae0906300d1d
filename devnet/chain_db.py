"""Writes a Stacks Blockchain API ("SBA") database for a scenario: blocks, deploy transactions,
smart_contracts rows and the chain tip, with the columns the real API fills. The caller commits."""

from __future__ import annotations

import contextlib
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devnet.chain_writer import (
    ANCHORED_SEQUENCE,
    BLOCK_SECONDS,
    BURN_GENESIS_HEIGHT,
    DEFAULT_METADATA_URL,
    GENESIS_TIME,
    NO_MICROBLOCK,
    ZERO_HASH,
    Block,
    ChainWriter,
    block_row,
    contract_row,
    deploy_tx_id,
    insert_rows,
    mint_log_rows,
    original_block,
    tx_row,
    write_chain_tip,
)
from devnet.scenario import Contract, Scenario

__all__ = [
    "ANCHORED_SEQUENCE",
    "BLOCK_SECONDS",
    "BURN_GENESIS_HEIGHT",
    "DEFAULT_METADATA_URL",
    "GENESIS_TIME",
    "NO_MICROBLOCK",
    "ZERO_HASH",
    "Block",
    "ChainWriter",
    "block_row",
    "connect",
    "contract_row",
    "create_schema",
    "deploy_tx_id",
    "drop_database",
    "ensure_database",
    "insert_rows",
    "mint_log_rows",
    "original_block",
    "seed",
    "tx_row",
    "write_chain_tip",
]


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """(Re)create the SBA tables; drops any existing ones first."""
    text = resources.files("devnet").joinpath("stacks-api-schema.sql").read_text("utf-8")
    conn.execute(text)  # no parameters: psycopg runs the whole script


def seed(
    conn: psycopg.Connection[Any], scenario: Scenario, *, metadata_url: str = DEFAULT_METADATA_URL
) -> None:
    """Write blocks 1..tip, one deploy tx and smart_contracts row per contract, and the tip."""
    by_height: dict[int, list[Contract]] = {}
    for contract in scenario.contracts:
        by_height.setdefault(contract.block_height, []).append(contract)
    nonces: dict[str, int] = {}
    blocks, txs, contracts, logs = [], [], [], []
    block = Block(1)
    for height in range(1, scenario.chain_tip_height + 1):
        block = block.child() if height > 1 else block
        deploys = by_height.get(block.height, [])
        blocks.append(block_row(block, len(deploys)))
        for tx_index, contract in enumerate(deploys):
            nonce = nonces[contract.deployer] = nonces.get(contract.deployer, -1) + 1
            txs.append(tx_row(contract, block, tx_index, nonce, metadata_url))
            contracts.append(contract_row(contract, block, metadata_url))
            logs.extend(mint_log_rows(contract, block, tx_index))
    insert_rows(conn, "blocks", blocks)
    insert_rows(conn, "txs", txs)
    insert_rows(conn, "smart_contracts", contracts)
    insert_rows(conn, "contract_logs", logs)
    write_chain_tip(conn, block)


def _libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style `postgresql+psycopg://` URLs as well as libpq ones."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgresql+") else url


def connect(url: str, **options: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(_libpq_url(url), **options)


def ensure_database(url: str) -> None:
    """Create the database named in `url` unless it exists (via the `postgres` database)."""
    name = conninfo_to_dict(_libpq_url(url))["dbname"]
    with _maintenance(url) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent create is fine
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))


def drop_database(url: str) -> None:
    """Drop the database named in `url` (tests use it to clean up their own database)."""
    name = conninfo_to_dict(_libpq_url(url))["dbname"]
    with _maintenance(url) as admin:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        admin.execute(statement.format(sql.Identifier(str(name))))


def _maintenance(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(make_conninfo(_libpq_url(url), dbname="postgres"), autocommit=True)
