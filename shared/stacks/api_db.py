"""Read-only access to the Stacks Blockchain API's Postgres database ("SBA database").

Only rows with `canonical AND microblock_canonical` count (stacks-protocol.md section 4).
Hashes and tx ids are `bytea` there and `0x`-prefixed hex here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from shared import clarity


@dataclass(frozen=True)
class ChainBlock:
    block_height: int
    index_block_hash: str


@dataclass(frozen=True)
class DeployedContract:
    contract_id: str
    abi: dict[str, Any]
    block_height: int
    index_block_hash: str
    tx_id: str
    tx_index: int
    sender_address: str


@dataclass(frozen=True)
class SftMint:
    """The first `sft_mint` print of one token id: where the token came into being."""

    token_number: int
    block_height: int
    index_block_hash: str
    tx_id: str
    tx_index: int
    event_index: int


_SFT_MINT_LOGS = text(
    """
    SELECT value, block_height, index_block_hash, tx_id, tx_index, event_index
    FROM contract_logs
    WHERE contract_identifier = :contract_id AND canonical AND microblock_canonical
      AND topic = 'print' AND block_height <= :upto
    ORDER BY block_height, microblock_sequence, tx_index, event_index
    """
)

_BATCH_BOUNDARY = text(
    """
    SELECT block_height FROM smart_contracts
    WHERE canonical AND microblock_canonical AND block_height > :after AND block_height <= :upto
    ORDER BY block_height
    OFFSET :limit LIMIT 1
    """
)

_DEPLOYMENTS = text(
    """
    SELECT * FROM (
      SELECT DISTINCT ON (sc.contract_id)
        sc.contract_id, sc.abi, sc.block_height, sc.index_block_hash, sc.tx_id,
        t.tx_index, t.sender_address
      FROM smart_contracts sc
      JOIN txs t ON t.tx_id = sc.tx_id AND t.index_block_hash = sc.index_block_hash
        AND t.microblock_hash = sc.microblock_hash
      WHERE sc.canonical AND sc.microblock_canonical
        AND t.canonical AND t.microblock_canonical AND t.status = 1
        AND sc.block_height > :after AND sc.block_height <= :upto
        AND jsonb_typeof(sc.abi) IN ('object', 'string')
      ORDER BY sc.contract_id, sc.block_height DESC, sc.microblock_sequence DESC
    ) latest
    ORDER BY block_height, tx_index
    """
)


class StacksApiDatabase:
    """Queries of the SBA database; the engine is owned by the caller (one per process)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def chain_tip(self) -> ChainBlock | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT block_height, index_block_hash FROM chain_tip LIMIT 1")
            ).first()
        return None if row is None else ChainBlock(row.block_height, _hex(row.index_block_hash))

    def next_deployment_batch(
        self, after_height: int, tip_height: int, limit: int
    ) -> tuple[int, list[DeployedContract]]:
        """Deployments in whole blocks after `after_height`: (last block covered, contracts).

        A batch holds about `limit` rows but never splits a block, so the caller can
        checkpoint the returned height and resume exactly there.
        """
        with self.engine.connect() as conn:
            boundary = conn.execute(
                _BATCH_BOUNDARY, {"after": after_height, "upto": tip_height, "limit": limit}
            ).scalar()
            upto = tip_height if boundary is None else max(boundary - 1, after_height + 1)
            upto = min(upto, tip_height)
            rows = conn.execute(_DEPLOYMENTS, {"after": after_height, "upto": upto}).all()
        return upto, [contract for row in rows if (contract := _deployment(row)) is not None]

    def sft_mints(self, contract_id: str, upto_height: int) -> list[SftMint]:
        """Token ids minted by `contract_id`'s `sft_mint` prints up to a height, first mint each."""
        mints: dict[int, SftMint] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(_SFT_MINT_LOGS, {"contract_id": contract_id, "upto": upto_height})
            for row in rows:
                token_number = sft_mint_token_id(bytes(row.value))
                if token_number is not None and token_number not in mints:
                    mints[token_number] = SftMint(
                        token_number,
                        row.block_height,
                        _hex(row.index_block_hash),
                        _hex(row.tx_id),
                        row.tx_index,
                        row.event_index,
                    )
        return list(mints.values())

    def block_at(self, height: int) -> ChainBlock | None:
        with self.engine.connect() as conn:
            return _block_at(conn, height)


def _block_at(conn: Connection, height: int) -> ChainBlock | None:
    row = conn.execute(
        text(
            "SELECT block_height, index_block_hash FROM blocks "
            "WHERE block_height = :h AND canonical LIMIT 1"
        ),
        {"h": height},
    ).first()
    return None if row is None else ChainBlock(row.block_height, _hex(row.index_block_hash))


def _deployment(row: Any) -> DeployedContract | None:
    abi = _abi_object(row.abi)
    if abi is None:
        return None
    return DeployedContract(
        contract_id=row.contract_id,
        abi=abi,
        block_height=row.block_height,
        index_block_hash=_hex(row.index_block_hash),
        tx_id=_hex(row.tx_id),
        tx_index=row.tx_index,
        sender_address=row.sender_address,
    )


def _abi_object(raw: Any) -> dict[str, Any] | None:
    """The ABI as an object; some SBA versions store it as a JSON string (or "null")."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def _hex(value: bytes | memoryview | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


def sft_mint_token_id(value: bytes) -> int | None:
    """The `token-id` of a SIP-013 `{type: "sft_mint", token-id: uint, ...}` print, else None."""
    try:
        printed = clarity.deserialize(value, max_depth=clarity.MAX_TYPE_DEPTH)
    except clarity.ClarityDecodeError:
        return None
    if not isinstance(printed, clarity.ClarityTuple):
        return None
    kind = printed.fields.get("type")
    token_id = printed.fields.get("token-id")
    if not isinstance(kind, clarity.StringAscii | clarity.StringUtf8) or kind.value != "sft_mint":
        return None
    return token_id.value if isinstance(token_id, clarity.UInt) else None
