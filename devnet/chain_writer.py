"""The Stacks Blockchain API ("SBA") rows the devnet writes (blocks, deploy transactions,
smart_contracts rows, SFT mint prints, the chain tip) and `ChainWriter`, which grows a seeded
chain. The caller commits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from devnet.abis import abi_for, raw_deploy_tx, source_code
from devnet.scenario import SFT, Contract
from shared.clarity import ClarityTuple, StringAscii, UInt, principal_from_string, serialize

ANCHORED_SEQUENCE = 2147483647  # microblock_sequence of anything in an anchored block
NO_MICROBLOCK = b""
ZERO_HASH = bytes(32)
BURN_GENESIS_HEIGHT = 666050  # mainnet's first Stacks block was anchored at this height
GENESIS_TIME = 1610645304
BLOCK_SECONDS = 600
DEFAULT_METADATA_URL = "http://127.0.0.1:8999"


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("/".join(["devnet", *map(str, parts)]).encode()).digest()


@dataclass(frozen=True)
class Block:
    """The `fork`-th block at `height` (fork 0 is the original chain) and the parent it extends.
    Its hashes derive from (height, fork), so every run of a scenario writes the same chain."""

    height: int
    fork: int = 0
    parent_index_block_hash: bytes = ZERO_HASH
    parent_block_hash: bytes = ZERO_HASH

    def digest(self, kind: str) -> bytes:
        return _digest(kind, self.height, self.fork)

    @property
    def index_block_hash(self) -> bytes:
        return self.digest("index-block")

    @property
    def block_hash(self) -> bytes:
        return self.digest("block")

    @property
    def burn_block_height(self) -> int:
        return BURN_GENESIS_HEIGHT + self.height

    @property
    def burn_block_time(self) -> int:
        return GENESIS_TIME + BLOCK_SECONDS * self.height

    def child(self, fork: int = 0) -> Block:
        return Block(self.height + 1, fork, self.index_block_hash, self.block_hash)


def original_block(height: int) -> Block:
    """The block at `height` on the chain `seed` writes (fork 0 all the way down)."""
    return Block(height - 1).child() if height > 1 else Block(height)


def deploy_tx_id(contract: Contract) -> bytes:
    """Stable per contract, so a re-org can re-include the same transaction in another block."""
    return _digest("deploy", contract.contract_id)


def _costs(seed: bytes) -> dict[str, int]:
    base = int.from_bytes(seed[:2], "big")
    names = ("read_count", "read_length", "runtime", "write_count", "write_length")
    return {f"execution_cost_{n}": (base + 7) * (i + 3) for i, n in enumerate(names)}


def block_row(block: Block, tx_count: int) -> dict[str, Any]:
    return {
        "index_block_hash": block.index_block_hash,
        "block_hash": block.block_hash,
        "block_height": block.height,
        "burn_block_time": block.burn_block_time,
        "burn_block_hash": block.digest("burn-block"),
        "burn_block_height": block.burn_block_height,
        "miner_txid": block.digest("miner-tx"),
        "parent_index_block_hash": block.parent_index_block_hash,
        "parent_block_hash": block.parent_block_hash,
        "parent_microblock_hash": ZERO_HASH,
        "parent_microblock_sequence": 0,
        "canonical": True,
        "tx_count": tx_count,
        "block_time": block.burn_block_time,
        "tenure_height": block.height,
        "tx_total_size": 180 * tx_count,
        **_costs(block.block_hash),
    }


def _anchored(block: Block) -> dict[str, Any]:
    return {
        "index_block_hash": block.index_block_hash,
        "parent_index_block_hash": block.parent_index_block_hash,
        "block_height": block.height,
        "microblock_hash": NO_MICROBLOCK,
        "microblock_sequence": ANCHORED_SEQUENCE,
        "microblock_canonical": True,
        "canonical": True,
    }


def tx_row(
    contract: Contract, block: Block, tx_index: int, nonce: int, metadata_url: str
) -> dict[str, Any]:
    """The deploy transaction: type 6 (versioned) or 1 (Clarity 1 era), aborted if it failed."""
    code = source_code(contract, metadata_url)
    fee = 3000 + 17 * len(code)
    return {
        **_anchored(block),
        "tx_id": deploy_tx_id(contract),
        "tx_index": tx_index,
        "raw_result": bytes.fromhex("0809" if contract.failed else "0703"),
        "block_hash": block.block_hash,
        "parent_block_hash": block.parent_block_hash,
        "burn_block_time": block.burn_block_time,
        "burn_block_height": block.burn_block_height,
        "parent_burn_block_time": block.burn_block_time - BLOCK_SECONDS,
        "block_time": block.burn_block_time,
        "type_id": 1 if contract.clarity_version is None else 6,
        "anchor_mode": 3,
        "status": -1 if contract.failed else 1,
        "post_conditions": b"\x01\x00\x00\x00\x00",
        "nonce": nonce,
        "fee_rate": fee,
        "sponsored": False,
        "sender_address": contract.deployer,
        "origin_hash_mode": 0,
        "event_count": 0,
        "raw_tx": raw_deploy_tx(contract, code, nonce, fee),
        "smart_contract_clarity_version": contract.clarity_version,
        "smart_contract_contract_id": contract.contract_id,
        "smart_contract_source_code": code,
        "vm_error": "Runtime(DivisionByZero, None)" if contract.failed else None,
        **_costs(deploy_tx_id(contract)),
    }


def contract_row(contract: Contract, block: Block, metadata_url: str) -> dict[str, Any]:
    """smart_contracts row; a failed deploy has no ABI, stored as JSON null like the SBA does."""
    return {
        **_anchored(block),
        "tx_id": deploy_tx_id(contract),
        "contract_id": contract.contract_id,
        "clarity_version": contract.clarity_version,
        "source_code": source_code(contract, metadata_url),
        "abi": Jsonb(abi_for(contract)),
    }


def mint_log_rows(contract: Contract, block: Block, tx_index: int) -> list[dict[str, Any]]:
    """SIP-013 `sft_mint` prints of the deploy transaction: an SFT mints its ids at deploy."""
    if contract.failed or contract.kind != SFT:
        return []
    recipient = principal_from_string(contract.deployer)
    rows = []
    for event_index, token in enumerate(contract.sft_tokens):
        printed = ClarityTuple(
            {
                "type": StringAscii("sft_mint"),
                "token-id": UInt(token.token_id),
                "amount": UInt(token.total_supply),
                "recipient": recipient,
            }
        )
        rows.append(
            {
                **_anchored(block),
                "tx_id": deploy_tx_id(contract),
                "tx_index": tx_index,
                "event_index": event_index,
                "contract_identifier": contract.contract_id,
                "topic": "print",
                "value": serialize(printed),
            }
        )
    return rows


def insert_rows(conn: psycopg.Connection[Any], table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
    )
    with conn.cursor() as cursor:
        cursor.executemany(statement, rows)


def write_chain_tip(conn: psycopg.Connection[Any], tip: Block) -> None:
    """Replace the single chain_tip row, with counts taken from the canonical rows."""
    conn.execute("DELETE FROM chain_tip")
    conn.execute(
        "INSERT INTO chain_tip (block_height, block_hash, index_block_hash, burn_block_height,"
        " block_count, tx_count, tx_count_unanchored, microblock_count)"
        " SELECT %s, %s, %s, %s, (SELECT count(*) FROM blocks WHERE canonical), t.n, t.n, 0"
        " FROM (SELECT count(*) AS n FROM txs WHERE canonical AND microblock_canonical) AS t",
        (tip.height, tip.block_hash, tip.index_block_hash, tip.burn_block_height),
    )


_EVENT_TABLES = ("txs", "smart_contracts", "contract_logs", "nft_events", "ft_events")


class ChainWriter:
    """Grows a seeded chain from tests: new blocks, deploys, tip moves and re-orgs."""

    def __init__(
        self, conn: psycopg.Connection[Any], *, metadata_url: str = DEFAULT_METADATA_URL
    ) -> None:
        self.conn = conn
        self.metadata_url = metadata_url
        self.head: Block | None = self._canonical_block(None)

    def append_block(self, height: int | None = None) -> Block:
        """A canonical block on the head (or, given a height, a fork on that height's parent)."""
        if height is None:
            height = self.head.height + 1 if self.head else 1
        parent = self.head if self.head and self.head.height == height - 1 else None
        parent = parent or self._canonical_block(height - 1) or Block(0)
        fork = self._scalar("SELECT count(*) FROM blocks WHERE block_height = %s", height)
        block = parent.child(fork) if height > 1 else Block(1, fork)
        insert_rows(self.conn, "blocks", [block_row(block, 0)])
        self.head = block
        return block

    def deploy_contract(self, contract: Contract, block: Block) -> bytes:
        """Add the deploy tx and smart_contracts row to `block`; returns the tx id."""
        count = "SELECT count(*) FROM txs WHERE "
        tx_index = self._scalar(count + "index_block_hash = %s", block.index_block_hash)
        nonce = self._scalar(count + "sender_address = %s", contract.deployer)
        url = self.metadata_url
        insert_rows(self.conn, "txs", [tx_row(contract, block, tx_index, nonce, url)])
        insert_rows(self.conn, "smart_contracts", [contract_row(contract, block, url)])
        insert_rows(self.conn, "contract_logs", mint_log_rows(contract, block, tx_index))
        self.conn.execute(
            "UPDATE blocks SET tx_count = tx_count + 1 WHERE index_block_hash = %s",
            (block.index_block_hash,),
        )
        return deploy_tx_id(contract)

    def set_tip(self, block: Block | None = None) -> None:
        """Point chain_tip at `block` (default: the head)."""
        target = block or self.head
        if target is None:
            raise ValueError("the chain has no blocks yet")
        write_chain_tip(self.conn, target)

    def mark_non_canonical(self, height: int, index_block_hash: bytes | None = None) -> int:
        """Flip `canonical` off for the block(s) at `height` and all their rows, like a re-org."""
        rows = self.conn.execute(
            "SELECT index_block_hash FROM blocks WHERE block_height = %s AND canonical"
            " AND (%s::bytea IS NULL OR index_block_hash = %s::bytea)",
            (height, index_block_hash, index_block_hash),
        ).fetchall()
        hashes = [row[0] for row in rows]
        for table in (*_EVENT_TABLES, "blocks"):
            statement = "UPDATE {} SET canonical = false WHERE index_block_hash = ANY(%s)"
            self.conn.execute(sql.SQL(statement).format(sql.Identifier(table)), (hashes,))
        if self.head and self.head.index_block_hash in hashes:
            self.head = self._canonical_block(None)
        return len(hashes)

    def _canonical_block(self, height: int | None) -> Block | None:
        """The canonical block at `height` (None: the highest), rebuilt from its stored hashes."""
        row = self.conn.execute(
            "SELECT block_height, index_block_hash, parent_index_block_hash, parent_block_hash"
            " FROM blocks WHERE canonical AND (%s::int IS NULL OR block_height = %s::int)"
            " ORDER BY block_height DESC LIMIT 1",
            (height, height),
        ).fetchone()
        if row is None:
            return None
        found, index_hash, parent_index_hash, parent_hash = row
        forks = (f for f in range(10_000) if Block(found, f).index_block_hash == index_hash)
        return Block(found, next(forks), bytes(parent_index_hash), bytes(parent_hash))

    def _scalar(self, query: LiteralString, *params: Any) -> int:
        row = self.conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0
