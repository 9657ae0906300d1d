"""Mints and burns (docs/chain-monitor.md#mints): NFT and SFT mints create tokens with
pending jobs, and a re-mint keeps fetched data (docs/reference-differences.md#re-mints);
FT mints and burns move the token's supply without a re-fetch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.changes import Entry, entry, record
from shared.indexing.token_jobs_sql import (
    INSERTED_COLUMNS,
    NEW_TOKENS_WITH_JOBS,
    PENDING_JOBS_FOR_NEW_TOKENS,
)
from shared.jobs.transitions import job_cause, repend_token_jobs
from shared.models import ChangeKind, JobTrigger, TokenType
from shared.sql_params import array_of, joined
from shared.stacks.api_db import ChainBlock
from shared.stacks.chain_events import Mint

MINT_BATCH = 1000
FT_TOKEN_NUMBER = 1  # a SIP-010 contract has one token

# Minted tokens of known contracts (any SIP) with their pending jobs, in one statement;
# also returns the tokens that existed already (the data-modifying CTEs do not show their
# rows to the final SELECT).
_INSERT_MINTED_TOKENS = text(
    f"""
    WITH minted AS (
      SELECT c.id AS contract_id, m.*
      FROM unnest({array_of(":principals", "text")}, {array_of(":numbers", "numeric")},
                  {array_of(":heights", "integer")}, {array_of(":hashes", "text")},
                  {array_of(":tx_ids", "text")}, {array_of(":tx_indexes", "integer")},
                  {array_of(":event_indexes", "integer")})
           AS m(principal, token_number, block_height, index_block_hash, tx_id, tx_index,
                event_index)
      JOIN smart_contracts c ON c.principal = m.principal
    ), new_tokens AS (
      INSERT INTO tokens (smart_contract_id, type, token_number, block_height,
                          index_block_hash, tx_id, tx_index, event_index)
      SELECT contract_id, CAST(:type AS token_type), token_number, block_height,
             index_block_hash, tx_id, tx_index, event_index
      FROM minted
      ON CONFLICT ON CONSTRAINT tokens_smart_contract_id_token_number_unique DO NOTHING
      RETURNING {INSERTED_COLUMNS}
    ), new_jobs AS ({PENDING_JOBS_FOR_NEW_TOKENS}), added AS ({NEW_TOKENS_WITH_JOBS})
    SELECT a.job_id AS new_job_id, NULL AS existing_token_id, c.principal, a.token_number,
           a.block_height, a.index_block_hash
    FROM added a JOIN smart_contracts c ON c.id = a.smart_contract_id
    UNION ALL
    SELECT NULL, t.id, NULL, NULL, NULL, NULL
    FROM minted m
    JOIN tokens t ON t.smart_contract_id = m.contract_id AND t.token_number = m.token_number
    """  # noqa: S608 - composed of constant SQL, values are bound
)

# Net FT supply change of a block applied to each contract's token, and recorded as applied
# so a re-org can reverse exactly that. An unknown supply (NULL: never read) stays unknown.
# Returns each changed token's new supply, for its `supply_changed` entry.
_APPLY_SUPPLY_DELTAS = text(
    f"""
    WITH changes AS (
      SELECT * FROM unnest({array_of(":principals", "text")}, {array_of(":deltas", "numeric")})
        AS d(principal, delta)
    ), updated AS (
      UPDATE tokens t
      SET total_supply = t.total_supply + d.delta, updated_at = NOW()
      FROM changes d
      JOIN smart_contracts c ON c.principal = d.principal
      WHERE t.smart_contract_id = c.id AND t.token_number = 1 AND t.type = 'ft'
        AND t.total_supply IS NOT NULL
      RETURNING t.id, d.delta, d.principal, CAST(t.total_supply AS text) AS total_supply
    ), applied AS (
      INSERT INTO chain_supply_deltas (block_height, token_id, delta)
      SELECT :block_height, id, delta FROM updated
    )
    SELECT principal, total_supply FROM updated WHERE delta <> 0
    """  # noqa: S608 - composed of constant SQL, values are bound
)


def store_mints(
    session: Session,
    mints: Sequence[Mint],
    token_type: TokenType,
    invalid_after: timedelta,
    block_time: datetime | None = None,
) -> list[int]:
    """Create minted tokens with pending jobs; a re-minted token keeps its data and has its
    job re-pended (an invalid one only after `invalid_after`). Returns job ids due now.
    `block_time`, the mints' block's, is the start of their freshness (docs/fetch-history.md)."""
    new_jobs: list[int] = []
    existing_tokens: list[int] = []
    details = {"token_type": token_type.value}
    for start in range(0, len(mints), MINT_BATCH):
        batch = mints[start : start + MINT_BATCH]
        params = {
            "type": token_type.value,
            "principals": joined(m.contract_id for m in batch),
            "numbers": joined(m.token_number for m in batch),
            "heights": joined(m.position.block_height for m in batch),
            "hashes": joined(m.position.index_block_hash for m in batch),
            "tx_ids": joined(m.position.tx_id for m in batch),
            "tx_indexes": joined(m.position.tx_index for m in batch),
            "event_indexes": joined(m.position.event_index for m in batch),
            **job_cause(JobTrigger.MINT, block_time),
        }
        added: list[Entry] = []
        for row in session.execute(_INSERT_MINTED_TOKENS, params):
            if row.existing_token_id is not None:
                existing_tokens.append(row.existing_token_id)
                continue
            if row.new_job_id is not None:
                new_jobs.append(row.new_job_id)
            block = (row.block_height, row.index_block_hash)
            number = int(row.token_number)
            added.append(
                entry(ChangeKind.TOKEN_ADDED, row.principal, number, block=block, details=details)
            )
        record(session, added)
    repended = repend_token_jobs(
        session,
        existing_tokens,
        invalid_after=invalid_after,
        trigger=JobTrigger.MINT,
        caused_at=block_time,
    )
    return new_jobs + repended


def apply_supply_deltas(session: Session, block: ChainBlock, deltas: Mapping[str, int]) -> None:
    """Add each FT contract's net minted-minus-burnt amount to its token's supply."""
    if not deltas:
        return
    changed = session.execute(
        _APPLY_SUPPLY_DELTAS,
        {
            "principals": joined(deltas),
            "deltas": joined(deltas.values()),
            "block_height": block.block_height,
        },
    )
    record(
        session,
        (
            entry(
                ChangeKind.SUPPLY_CHANGED,
                row.principal,
                FT_TOKEN_NUMBER,
                block=(block.block_height, block.index_block_hash),
                details={"total_supply": row.total_supply},
            )
            for row in changed
        ),
    )
