"""The contract importer: token contracts deployed on chain become contract jobs.

It scans the SBA database's deployments after its checkpoint (`chain_tip`) in batches of
whole blocks; each batch and its checkpoint commit together, so a restart resumes exactly
where it stopped and a contract is never imported twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import session_scope
from shared.models import ChainTip, Job, SmartContract
from shared.services.runner import JobContext, dispatch
from shared.stacks.abi import classify_abi, first_token_name
from shared.stacks.api_db import ChainBlock, DeployedContract, StacksApiDatabase

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process running the importer.
IMPORTER_LOCK_KEY = 0x544D5F494D50  # "TM_IMP"


@dataclass
class ImportBatch:
    """What one batch did: the new contract jobs to dispatch once the batch is committed."""

    locked: bool = True
    caught_up: bool = True
    scanned: int = 0
    new_job_ids: list[int] = field(default_factory=list)
    checkpoint: ChainBlock | None = None


def import_contracts(
    ctx: JobContext, chain: StacksApiDatabase, batch_size: int, time_budget_s: float
) -> int:
    """Import batch after batch (each committed, then dispatched) until caught up or out of
    time; returns the number of new contract jobs."""
    deadline = time.monotonic() + time_budget_s
    created = 0
    while True:
        with session_scope(ctx.sessions) as session:
            batch = import_next_batch(session, chain, batch_size)
        dispatch(ctx, batch.new_job_ids)
        created += len(batch.new_job_ids)
        if batch.checkpoint is not None:
            log.info("imported up to block %d", batch.checkpoint.block_height)
        if not batch.locked or batch.caught_up or time.monotonic() > deadline:
            return created


def import_next_batch(session: Session, chain: StacksApiDatabase, batch_size: int) -> ImportBatch:
    """Import one batch of deployments after the checkpoint (caller commits)."""
    if not session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": IMPORTER_LOCK_KEY}
    ).scalar():
        return ImportBatch(locked=False)
    checkpoint = session.execute(
        select(ChainTip.block_height, ChainTip.index_block_hash).with_for_update()
    ).one()
    sba_tip = chain.chain_tip()
    if sba_tip is None or sba_tip.block_height <= checkpoint.block_height:
        return ImportBatch()
    # Before the first import the checkpoint row says height 1 with no hash: start at 0.
    after = checkpoint.block_height if checkpoint.index_block_hash else -1
    upto, deployments = chain.next_deployment_batch(after, sba_tip.block_height, batch_size)
    job_ids = store_token_contracts(session, deployments)
    block = sba_tip if upto == sba_tip.block_height else chain.block_at(upto)
    block = block or ChainBlock(upto, sba_tip.index_block_hash)
    session.execute(
        update(ChainTip).values(
            block_height=block.block_height,
            index_block_hash=block.index_block_hash,
            updated_at=func.now(),
        )
    )
    return ImportBatch(
        caught_up=upto >= sba_tip.block_height,
        scanned=len(deployments),
        new_job_ids=job_ids,
        checkpoint=block,
    )


def store_token_contracts(session: Session, deployments: Sequence[DeployedContract]) -> list[int]:
    """Insert the token contracts among `deployments` with pending jobs; returns new job ids."""
    rows = []
    for deployment in deployments:
        sip = classify_abi(deployment.abi)
        if sip is None:
            continue
        rows.append(
            {
                "principal": deployment.contract_id,
                "sip": sip,
                "fungible_token_name": first_token_name(deployment.abi, "fungible_tokens"),
                "non_fungible_token_name": first_token_name(deployment.abi, "non_fungible_tokens"),
                "sender_address": deployment.sender_address,
                "block_height": deployment.block_height,
                "index_block_hash": deployment.index_block_hash,
                "tx_id": deployment.tx_id,
                "tx_index": deployment.tx_index,
            }
        )
    if not rows:
        return []
    contract_ids = session.scalars(
        insert(SmartContract)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[SmartContract.principal])
        .returning(SmartContract.id)
    ).all()
    log.info("imported %d token contracts of %d deployments", len(contract_ids), len(deployments))
    return create_contract_jobs(session, contract_ids)


def create_contract_jobs(session: Session, contract_ids: Sequence[int]) -> list[int]:
    if not contract_ids:
        return []
    return list(
        session.scalars(
            insert(Job)
            .values([{"smart_contract_id": cid, "updated_at": func.now()} for cid in contract_ids])
            .on_conflict_do_nothing(
                index_elements=[Job.smart_contract_id], index_where=Job.token_id.is_(None)
            )
            .returning(Job.id)
        ).all()
    )
