"""Writes a Stacks Blockchain API ("SBA") database for a scenario: blocks, deploy transactions,
smart_contracts rows, NFT mints, transfers and burns (devnet.nft_history) and the chain tip,
with the columns the real API fills. The caller commits."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devnet.chain_events import Tx, call_tx_id, call_tx_row, nft_event_row
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
from devnet.nft_history import MINT, NftMove, asset_identifier, nft_moves
from devnet.scenario import NFT, Contract, Scenario

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
    """Write blocks 1..tip, one deploy tx and smart_contracts row per contract, each NFT
    collection's history in its deploy block, and the tip."""
    by_height: dict[int, list[Contract]] = {}
    for contract in scenario.contracts:
        by_height.setdefault(contract.block_height, []).append(contract)
    rows = _SeedRows(metadata_url)
    block = Block(1)
    for height in range(1, scenario.chain_tip_height + 1):
        block = block.child() if height > 1 else block
        rows.add_block(block, by_height.get(block.height, []))
    for table, table_rows in rows.tables():
        insert_rows(conn, table, table_rows)
    write_chain_tip(conn, block)


@dataclass
class _SeedRows:
    """The rows of a seeded chain, table by table."""

    metadata_url: str
    nonces: dict[str, int] = field(default_factory=dict)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    deploy_txs: list[dict[str, Any]] = field(default_factory=list)
    call_txs: list[dict[str, Any]] = field(default_factory=list)  # other columns than deploys
    contracts: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    nft_events: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """(table, rows) in insert order; rows of one insert have the same columns."""
        return [
            ("blocks", self.blocks),
            ("txs", self.deploy_txs),
            ("txs", self.call_txs),
            ("smart_contracts", self.contracts),
            ("contract_logs", self.logs),
            ("nft_events", self.nft_events),
        ]

    def add_block(self, block: Block, deploys: list[Contract]) -> None:
        """The deploys, then each collection's transfers and burns, one call tx each."""
        for tx_index, contract in enumerate(deploys):
            self._deploy(block, tx_index, contract)
        tx_index = len(deploys)
        for contract in deploys:
            for move in [] if contract.failed else nft_moves(contract):
                self._nft_move(
                    Tx(block, call_tx_id(block, tx_index), tx_index, move.sender), contract, move
                )
                tx_index += 1
        self.blocks.append(block_row(block, tx_index))

    def _deploy(self, block: Block, tx_index: int, contract: Contract) -> None:
        """The deploy tx; an NFT collection's mints tokens 1..last_token_id to the deployer."""
        nonce = self._nonce(contract.deployer)
        self.deploy_txs.append(tx_row(contract, block, tx_index, nonce, self.metadata_url))
        self.contracts.append(contract_row(contract, block, self.metadata_url))
        self.logs.extend(mint_log_rows(contract, block, tx_index))
        if contract.failed or contract.kind != NFT:
            return
        tx = Tx(block, deploy_tx_id(contract), tx_index, contract.deployer)
        asset = asset_identifier(contract)
        self.nft_events.extend(
            nft_event_row(tx, MINT, asset, token_id, None, contract.deployer)
            for token_id in range(1, contract.last_token_id + 1)
        )

    def _nft_move(self, tx: Tx, contract: Contract, move: NftMove) -> None:
        function = "burn" if move.recipient is None else "transfer"
        nonce = self._nonce(move.sender)
        self.call_txs.append(call_tx_row(tx, contract.contract_id, function, nonce))
        asset = asset_identifier(contract)
        self.nft_events.append(
            nft_event_row(tx, move.kind, asset, move.token_id, move.sender, move.recipient)
        )

    def _nonce(self, sender: str) -> int:
        self.nonces[sender] = self.nonces.get(sender, -1) + 1
        return self.nonces[sender]


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
