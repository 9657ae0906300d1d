"""Read-only access to the Stacks Blockchain API's Postgres database ("SBA database").

Only rows with `canonical AND microblock_canonical` count: a re-org flips those flags rather
than deleting rows (docs/chain-monitor.md#source).
Hashes and tx ids are `bytea` there and `0x`-prefixed hex here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from shared.stacks.prints import sft_mint_token_id


@dataclass(frozen=True)
class ChainBlock:
    block_height: int
    index_block_hash: str
    # When the block was made, where it was read (the freshness of its mints and notifications
    # starts there); not part of a block's identity.
    time: datetime | None = field(default=None, compare=False)


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
class DeploymentLookup:
    """A contract's latest canonical successful deployment; `deployment` is None when the
    deploy row has no ABI."""

    found: bool
    deployment: DeployedContract | None = None
    # "transaction" or "block": the deploy row's canonical transaction or block is missing.
    missing: str | None = None


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

DEPLOYMENTS = text(
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

# A deploy row whose transaction or block row is missing is reported, not skipped.
_DEPLOYMENT_OF = text(
    """
    SELECT sc.contract_id, sc.abi, sc.block_height, sc.index_block_hash, sc.tx_id,
      t.tx_index, t.sender_address,
      EXISTS (SELECT 1 FROM blocks b
              WHERE b.index_block_hash = sc.index_block_hash AND b.canonical) AS block_found
    FROM smart_contracts sc
    LEFT JOIN txs t ON t.tx_id = sc.tx_id AND t.index_block_hash = sc.index_block_hash
      AND t.microblock_hash = sc.microblock_hash AND t.canonical AND t.microblock_canonical
    WHERE sc.contract_id = :contract_id AND sc.canonical AND sc.microblock_canonical
      AND (t.tx_id IS NULL OR t.status = 1)
    ORDER BY t.tx_id IS NULL, sc.block_height DESC, sc.microblock_sequence DESC
    LIMIT 1
    """
)

_CANONICAL_AMONG = text(
    "SELECT index_block_hash FROM blocks WHERE canonical AND index_block_hash = ANY(:hashes)"
)

_CANONICAL_BLOCKS = text(
    "SELECT block_height, index_block_hash FROM blocks"
    " WHERE canonical AND block_height > :after AND block_height <= :upto"
    " ORDER BY block_height DESC LIMIT :limit"
)


class StacksApiDatabase:
    """Queries of the SBA database; the engine is owned by the caller (one per process)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One read-only REPEATABLE READ transaction: every query sees the same chain, even
        while the API writes a re-org."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with conn.begin():
                yield conn

    def chain_tip(self) -> ChainBlock | None:
        with self.engine.connect() as conn:
            return chain_tip(conn)

    def canonical_among(self, index_block_hashes: Sequence[str]) -> set[str]:
        """Which of these blocks are canonical now."""
        with self.engine.connect() as conn:
            hashes = [bytes_of(h) for h in index_block_hashes]
            rows = conn.execute(_CANONICAL_AMONG, {"hashes": hashes}).scalars()
            return {hex_of(h) for h in rows}

    def deployment_of(self, contract_id: str) -> DeploymentLookup:
        """The contract's latest canonical successful deployment (admin import)."""
        with self.engine.connect() as conn:
            row = conn.execute(_DEPLOYMENT_OF, {"contract_id": contract_id}).first()
        if row is None:
            return DeploymentLookup(found=False)
        if row.tx_index is None or not row.block_found:
            missing = "transaction" if row.tx_index is None else "block"
            return DeploymentLookup(found=True, missing=missing)
        return DeploymentLookup(found=True, deployment=_deployment(row))

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
                        hex_of(row.index_block_hash),
                        hex_of(row.tx_id),
                        row.tx_index,
                        row.event_index,
                    )
        return list(mints.values())

    def block_at(self, height: int) -> ChainBlock | None:
        with self.engine.connect() as conn:
            return block_at(conn, height)


def chain_tip(conn: Connection) -> ChainBlock | None:
    row = conn.execute(text("SELECT block_height, index_block_hash FROM chain_tip LIMIT 1")).first()
    return None if row is None else ChainBlock(row.block_height, hex_of(row.index_block_hash))


def block_at(conn: Connection, height: int) -> ChainBlock | None:
    row = conn.execute(
        text(
            "SELECT block_height, index_block_hash FROM blocks "
            "WHERE block_height = :h AND canonical LIMIT 1"
        ),
        {"h": height},
    ).first()
    return None if row is None else ChainBlock(row.block_height, hex_of(row.index_block_hash))


def canonical_blocks(conn: Connection, after: int, upto: int, limit: int) -> list[ChainBlock]:
    """The highest `limit` canonical blocks in (after, upto], lowest first."""
    rows = conn.execute(_CANONICAL_BLOCKS, {"after": after, "upto": upto, "limit": limit}).all()
    return [ChainBlock(row.block_height, hex_of(row.index_block_hash)) for row in reversed(rows)]


def next_deployment_batch(
    conn: Connection, after_height: int, tip_height: int, limit: int
) -> tuple[int, list[DeployedContract]]:
    """Deployments in whole blocks after `after_height`: (last block covered, contracts).

    A batch holds about `limit` rows but never splits a block, so the caller can
    checkpoint the returned height and resume exactly there.
    """
    boundary = conn.execute(
        _BATCH_BOUNDARY, {"after": after_height, "upto": tip_height, "limit": limit}
    ).scalar()
    upto = tip_height if boundary is None else max(boundary - 1, after_height + 1)
    upto = min(upto, tip_height)
    rows = conn.execute(DEPLOYMENTS, {"after": after_height, "upto": upto}).all()
    return upto, [contract for row in rows if (contract := _deployment(row)) is not None]


def deployments(conn: Connection, after: int, upto: int) -> list[DeployedContract]:
    """Successful canonical deployments with an ABI in blocks (after, upto], in chain order."""
    rows = conn.execute(DEPLOYMENTS, {"after": after, "upto": upto}).all()
    return [contract for row in rows if (contract := _deployment(row)) is not None]


def _deployment(row: Any) -> DeployedContract | None:
    abi = _abi_object(row.abi)
    if abi is None:
        return None
    return DeployedContract(
        contract_id=row.contract_id,
        abi=abi,
        block_height=row.block_height,
        index_block_hash=hex_of(row.index_block_hash),
        tx_id=hex_of(row.tx_id),
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


def hex_of(value: bytes | memoryview | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


def bytes_of(value: str) -> bytes:
    """`0x`-prefixed hex (our form) -> the SBA's bytea."""
    return bytes.fromhex(value.removeprefix("0x"))
