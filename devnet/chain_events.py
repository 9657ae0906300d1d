"""Contract calls and their events in the Stacks API ("SBA") database, as the API writes them:
print events (SIP-019 notifications, SIP-013 `sft_mint`), NFT mints, transfers and burns, FT
mints and burns, plus many empty blocks at once. `EventWriter` works on a `ChainWriter`'s
chain; the caller commits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from devnet.chain_writer import (
    ANCHORED_SEQUENCE,
    BLOCK_SECONDS,
    NO_MICROBLOCK,
    Block,
    ChainWriter,
    block_row,
    insert_rows,
    write_chain_tip,
)
from devnet.nft_history import BURN, MINT
from shared import clarity
from shared.c32 import c32_address_decode
from shared.clarity import (
    Buffer,
    ClarityList,
    ClarityTuple,
    ClarityValue,
    StringAscii,
    StringUtf8,
    UInt,
    principal_from_string,
)


@dataclass
class Tx:
    """A contract-call transaction; its events are numbered in the order they are added."""

    block: Block
    tx_id: bytes
    tx_index: int
    sender: str
    failed: bool = False
    events: int = 0

    def next_event_index(self) -> int:
        self.events += 1
        return self.events - 1


class EventWriter:
    """Writes contract calls with events into blocks of a `ChainWriter`'s chain."""

    def __init__(self, writer: ChainWriter) -> None:
        self.writer = writer
        self.conn = writer.conn

    def contract_call(
        self, block: Block, sender: str, contract_id: str, function: str = "mint", **options: Any
    ) -> Tx:
        """A contract-call tx in `block` (`failed=True`: aborted, the API keeps no events)."""
        tx_index = self._tx_count("index_block_hash", block.index_block_hash)
        nonce = self._tx_count("sender_address", sender)
        tx = Tx(block, call_tx_id(block, tx_index), tx_index, sender, bool(options.get("failed")))
        insert_rows(self.conn, "txs", [call_tx_row(tx, contract_id, function, nonce)])
        self.conn.execute(
            "UPDATE blocks SET tx_count = tx_count + 1 WHERE index_block_hash = %s",
            (block.index_block_hash,),
        )
        return tx

    def print_event(self, tx: Tx, contract_identifier: str, value: ClarityValue | bytes) -> None:
        raw = value if isinstance(value, bytes) else clarity.serialize(value)
        row = {"contract_identifier": contract_identifier, "topic": "print", "value": raw}
        insert_rows(self.conn, "contract_logs", [self._event(tx) | row])

    def nft_mint(
        self, tx: Tx, asset_identifier: str, token_id: int | ClarityValue, recipient: str
    ) -> None:
        self.nft_event(tx, MINT, asset_identifier, token_id, None, recipient)

    def nft_event(
        self,
        tx: Tx,
        kind: int,
        asset_identifier: str,
        token_id: int | ClarityValue,
        sender: str | None,
        recipient: str | None,
    ) -> None:
        """An NFT mint (no sender), transfer, or burn (no recipient)."""
        row = nft_event_row(tx, kind, asset_identifier, token_id, sender, recipient)
        insert_rows(self.conn, "nft_events", [row])

    def ft_event(self, tx: Tx, kind: int, asset_identifier: str, amount: int, who: str) -> None:
        """An FT mint (credits `who`), burn (debits `who`) or transfer (from `who`)."""
        row = {
            "asset_event_type_id": kind,
            "asset_identifier": asset_identifier,
            "amount": amount,
            "sender": None if kind == MINT else who,
            "recipient": who if kind == MINT else (None if kind == BURN else tx.sender),
        }
        insert_rows(self.conn, "ft_events", [event_row(tx) | row])

    def _event(self, tx: Tx) -> dict[str, Any]:
        return event_row(tx)

    def _tx_count(self, column: str, value: Any) -> int:
        query = sql.SQL("SELECT count(*) FROM txs WHERE {} = %s").format(sql.Identifier(column))
        row = self.conn.execute(query, (value,)).fetchone()
        return int(row[0]) if row else 0


def event_row(tx: Tx) -> dict[str, Any]:
    """The columns every event row has: the next event of `tx`, in an anchored block."""
    return {
        "event_index": tx.next_event_index(),
        "tx_id": tx.tx_id,
        "tx_index": tx.tx_index,
        "block_height": tx.block.height,
        "index_block_hash": tx.block.index_block_hash,
        "parent_index_block_hash": tx.block.parent_index_block_hash,
        "microblock_hash": NO_MICROBLOCK,
        "microblock_sequence": ANCHORED_SEQUENCE,
        "microblock_canonical": True,
        "canonical": True,
    }


def nft_event_row(
    tx: Tx,
    kind: int,
    asset_identifier: str,
    token_id: int | ClarityValue,
    sender: str | None,
    recipient: str | None,
) -> dict[str, Any]:
    value = UInt(token_id) if isinstance(token_id, int) else token_id
    return event_row(tx) | {
        "asset_event_type_id": kind,
        "asset_identifier": asset_identifier,
        "value": clarity.serialize(value),
        "sender": sender,
        "recipient": recipient,
    }


def call_tx_id(block: Block, tx_index: int) -> bytes:
    return hashlib.sha256(f"call/{block.index_block_hash.hex()}/{tx_index}".encode()).digest()


def call_tx_row(tx: Tx, contract_id: str, function: str, nonce: int) -> dict[str, Any]:
    block = tx.block
    version, signer = c32_address_decode(tx.sender)
    raw = b"\x00\x00\x00\x00\x01\x04\x00" + signer + nonce.to_bytes(8, "big") + b"\x02"
    return {
        "tx_id": tx.tx_id,
        "tx_index": tx.tx_index,
        "raw_result": bytes.fromhex("0809" if tx.failed else "0703"),
        "index_block_hash": block.index_block_hash,
        "block_hash": block.block_hash,
        "block_height": block.height,
        "parent_block_hash": block.parent_block_hash,
        "burn_block_time": block.burn_block_time,
        "parent_burn_block_time": block.burn_block_time - BLOCK_SECONDS,
        "type_id": 2,
        "anchor_mode": 3,
        "status": -1 if tx.failed else 1,
        "canonical": True,
        "post_conditions": b"\x01\x00\x00\x00\x00",
        "nonce": nonce,
        "fee_rate": 2000 + version,
        "sponsored": False,
        "sender_address": tx.sender,
        "origin_hash_mode": 0,
        "event_count": 0,
        "execution_cost_read_count": 5,
        "execution_cost_read_length": 500,
        "execution_cost_runtime": 10_000,
        "execution_cost_write_count": 2,
        "execution_cost_write_length": 100,
        "raw_tx": raw,
        "microblock_canonical": True,
        "microblock_sequence": ANCHORED_SEQUENCE,
        "microblock_hash": NO_MICROBLOCK,
        "parent_index_block_hash": block.parent_index_block_hash,
        "contract_call_contract_id": contract_id,
        "contract_call_function_name": function,
        "contract_call_function_args": b"\x00\x00\x00\x00",
        "burn_block_height": block.burn_block_height,
        "vm_error": "Runtime(DivisionByZero, None)" if tx.failed else None,
    }


def append_blocks(writer: ChainWriter, count: int, *, set_tip: bool = True) -> list[Block]:
    """`count` empty canonical blocks on the head in one statement (backlogs)."""
    if writer.head is None:
        raise ValueError("seed or append a first block before appending many")
    blocks = []
    block = writer.head
    for _ in range(count):
        block = block.child()
        blocks.append(block)
    insert_rows(writer.conn, "blocks", [block_row(b, 0) for b in blocks])
    writer.head = block
    if set_tip:
        write_chain_tip(writer.conn, block)
    return blocks


# --- print payloads -------------------------------------------------------------------------


def metadata_update(
    token_class: str,
    contract_id: str,
    token_ids: Sequence[int] | None = None,
    update_mode: str | None = None,
    ttl: int | None = None,
    *,
    strings: str = "ascii",
    contract_id_as_string: bool = False,
) -> ClarityTuple:
    """A SIP-019 `token-metadata-update` print; `strings` picks the encoding of the string
    fields (`ascii`, `utf8` or `buffer`), as contracts in the wild vary."""
    payload: dict[str, ClarityValue] = {
        "token-class": _string(token_class, strings),
        "contract-id": (
            _string(contract_id, strings)
            if contract_id_as_string
            else principal_from_string(contract_id)
        ),
    }
    if token_ids is not None:
        payload["token-ids"] = ClarityList([UInt(i) for i in token_ids])
    if update_mode is not None:
        payload["update-mode"] = _string(update_mode, strings)
    if ttl is not None:
        payload["ttl"] = UInt(ttl)
    return ClarityTuple(
        {"notification": StringAscii("token-metadata-update"), "payload": ClarityTuple(payload)}
    )


def sft_mint(token_id: int, amount: int, recipient: str) -> ClarityTuple:
    """A SIP-013 `sft_mint` print."""
    return ClarityTuple(
        {
            "type": StringAscii("sft_mint"),
            "token-id": UInt(token_id),
            "amount": UInt(amount),
            "recipient": principal_from_string(recipient),
        }
    )


def _string(text: str, encoding: str) -> ClarityValue:
    if encoding == "utf8":
        return StringUtf8(text)
    if encoding == "buffer":
        return Buffer(text.encode())
    return StringAscii(text)
