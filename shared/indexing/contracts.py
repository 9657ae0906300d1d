"""Contract jobs: enumerate an NFT collection's tokens, or create an FT's single token."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from shared.changes import entry, record
from shared.indexing.token_jobs_sql import (
    INSERTED_COLUMNS,
    NEW_TOKENS_WITH_JOBS,
    PENDING_JOBS_FOR_NEW_TOKENS,
)
from shared.jobs.transitions import ClaimedJob, JobOutcome, finish_job
from shared.models import (
    TOKEN_TYPE_BY_SIP,
    ChangeKind,
    JobStatus,
    JobTrigger,
    OwnershipImport,
    Sip,
    SmartContract,
    TokenType,
)
from shared.sql_params import array_of, joined
from shared.stacks.api_db import SftMint
from shared.stacks.node import StacksNodeClient

log = logging.getLogger(__name__)

TOKEN_INSERT_BATCH = 5000
# Tokens found when their contract is processed (docs/fetch-history.md#triggers).
IMPORTED = {"trigger": JobTrigger.IMPORT.value, "caused_at": None}

# New tokens and their pending jobs in one statement per batch (no round trip per token).
# Existing tokens keep their data and their job (docs/reference-differences.md#re-mints).
_INSERT_TOKENS_WITH_JOBS = text(
    f"""
    WITH new_tokens AS (
      INSERT INTO tokens (smart_contract_id, type, token_number, block_height,
                          index_block_hash, tx_id, tx_index)
      SELECT c.id, CAST(:type AS token_type), n, c.block_height, c.index_block_hash,
             c.tx_id, c.tx_index
      FROM smart_contracts c, generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
      WHERE c.id = :contract_id
      ON CONFLICT ON CONSTRAINT tokens_smart_contract_id_token_number_unique DO NOTHING
      RETURNING {INSERTED_COLUMNS}
    ), new_jobs AS ({PENDING_JOBS_FOR_NEW_TOKENS})
    {NEW_TOKENS_WITH_JOBS}
    """  # noqa: S608 - composed of constant SQL, values are bound
)


# Minted tokens (SIP-013 `sft_mint` prints) with their pending jobs, in one statement.
_INSERT_MINTED_TOKENS_WITH_JOBS = text(
    f"""
    WITH new_tokens AS (
      INSERT INTO tokens (smart_contract_id, type, token_number, block_height,
                          index_block_hash, tx_id, tx_index, event_index)
      SELECT :contract_id, CAST(:type AS token_type), m.n, m.h, m.ibh, m.tx, m.txi, m.ei
      FROM unnest({array_of(":numbers", "numeric")}, {array_of(":heights", "integer")},
                  {array_of(":hashes", "text")}, {array_of(":tx_ids", "text")},
                  {array_of(":tx_indexes", "integer")}, {array_of(":event_indexes", "integer")})
           AS m(n, h, ibh, tx, txi, ei)
      ON CONFLICT ON CONSTRAINT tokens_smart_contract_id_token_number_unique DO NOTHING
      RETURNING {INSERTED_COLUMNS}
    ), new_jobs AS ({PENDING_JOBS_FOR_NEW_TOKENS})
    {NEW_TOKENS_WITH_JOBS}
    """  # noqa: S608 - composed of constant SQL, values are bound
)


@dataclass(frozen=True)
class ContractRef:
    id: int
    principal: str
    sip: Sip


def load_contract(session: Session, contract_id: int) -> ContractRef | None:
    row = session.execute(
        select(SmartContract.id, SmartContract.principal, SmartContract.sip).where(
            SmartContract.id == contract_id
        )
    ).first()
    return None if row is None else ContractRef(row.id, row.principal, row.sip)


def token_count_for(node: StacksNodeClient, contract: ContractRef, max_tokens: int) -> int:
    """How many tokens to create: NFT `get-last-token-id` (capped), FT 1, SFT none (mints)."""
    if contract.sip == Sip.SIP_010:
        return 1
    if contract.sip != Sip.SIP_009:
        return 0
    last = node.read_uint(contract.principal, "get-last-token-id")
    if last > max_tokens:
        log.warning(
            "%s claims %d tokens, above METADATA_MAX_NFT_CONTRACT_TOKEN_COUNT=%d: not enumerated",
            contract.principal,
            last,
            max_tokens,
        )
        return 0
    return last


def store_minted_tokens(
    session: Session, contract: ContractRef, mints: Sequence[SftMint], job: ClaimedJob
) -> list[int]:
    """Create the minted SFT tokens with pending jobs, mark the contract job done."""
    job_ids: list[int] = []
    for start in range(0, len(mints), TOKEN_INSERT_BATCH):
        batch = mints[start : start + TOKEN_INSERT_BATCH]
        params = {
            "contract_id": contract.id,
            "type": TokenType.SFT.value,
            "numbers": joined(m.token_number for m in batch),
            "heights": joined(m.block_height for m in batch),
            "hashes": joined(m.index_block_hash for m in batch),
            "tx_ids": joined(m.tx_id for m in batch),
            "tx_indexes": joined(m.tx_index for m in batch),
            "event_indexes": joined(m.event_index for m in batch),
            **IMPORTED,
        }
        new_tokens = session.execute(_INSERT_MINTED_TOKENS_WITH_JOBS, params).all()
        job_ids.extend(_added(session, contract, new_tokens))
    finish_job(session, job, JobOutcome(JobStatus.DONE))
    return job_ids


def store_contract_tokens(
    session: Session, contract: ContractRef, count: int, job: ClaimedJob
) -> list[int]:
    """Create tokens 1..count with pending jobs, mark the contract job done; new job ids."""
    token_type = TOKEN_TYPE_BY_SIP[contract.sip]
    updated = session.execute(
        update(SmartContract)
        .where(SmartContract.id == contract.id)
        .values(token_count=count if token_type != TokenType.SFT else None)
        .returning(SmartContract.id)
    ).first()
    if updated is None:  # rolled back by a re-org while we were calling the node
        finish_job(session, job, JobOutcome(JobStatus.DONE))
        return []
    job_ids: list[int] = []
    for first in range(1, count + 1, TOKEN_INSERT_BATCH):
        last = min(first + TOKEN_INSERT_BATCH - 1, count)
        params = {
            "contract_id": contract.id,
            "type": token_type.value,
            "first": first,
            "last": last,
            **IMPORTED,
        }
        new_tokens = session.execute(_INSERT_TOKENS_WITH_JOBS, params).all()
        job_ids.extend(_added(session, contract, new_tokens))
    if token_type == TokenType.NFT and count:
        # The monitor reads the collection's owners from its history
        # (docs/chain-monitor.md#ownership-import).
        session.execute(insert(OwnershipImport).values(smart_contract_id=contract.id))
    finish_job(session, job, JobOutcome(JobStatus.DONE))
    return job_ids


def _added(session: Session, contract: ContractRef, new_tokens: Sequence[Any]) -> list[int]:
    """Record `token_added` for the tokens a statement created; returns their new jobs."""
    details = {"token_type": TOKEN_TYPE_BY_SIP[contract.sip].value}
    record(
        session,
        (
            entry(
                ChangeKind.TOKEN_ADDED,
                contract.principal,
                int(t.token_number),
                block=(t.block_height, t.index_block_hash),
                details=details,
            )
            for t in new_tokens
        ),
    )
    return [t.job_id for t in new_tokens if t.job_id is not None]
