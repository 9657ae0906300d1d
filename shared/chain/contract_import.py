"""Token contracts found on chain become `smart_contracts` rows with a pending contract job:
in bulk for deployments (history import and monitor), or one on demand (admin import)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.changes import Entry, entry, record
from shared.jobs.transitions import repend_contract_job
from shared.models import TOKEN_TYPE_BY_SIP, ChangeKind, Job, SmartContract
from shared.stacks.abi import classify_abi, first_token_name
from shared.stacks.api_db import DeployedContract, StacksApiDatabase

log = logging.getLogger(__name__)


class ContractImportError(Exception):
    """Why a contract cannot be imported; the message is Hiro's API's admin answer."""


def store_token_contracts(session: Session, deployments: Sequence[DeployedContract]) -> list[int]:
    """Insert the token contracts among `deployments` with pending jobs; returns new job ids.
    A contract already stored is left as it is (its tokens and jobs too)."""
    rows = [row for deployment in deployments if (row := contract_row(deployment)) is not None]
    if not rows:
        return []
    stored = session.execute(
        insert(SmartContract)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[SmartContract.principal])
        .returning(*_ADDED_COLUMNS)
    ).all()
    log.info("stored %d token contracts of %d deployments", len(stored), len(deployments))
    record(session, map(_contract_added, stored))
    return create_contract_jobs(session, [row.id for row in stored])


_ADDED_COLUMNS = (
    SmartContract.id,
    SmartContract.principal,
    SmartContract.sip,
    SmartContract.block_height,
    SmartContract.index_block_hash,
)


def _contract_added(row: Any) -> Entry:
    block = (row.block_height, row.index_block_hash)
    details = {"token_type": TOKEN_TYPE_BY_SIP[row.sip].value}
    return entry(ChangeKind.CONTRACT_ADDED, row.principal, block=block, details=details)


def contract_row(deployment: DeployedContract) -> dict[str, Any] | None:
    """The `smart_contracts` row of a token contract; None for any other contract."""
    sip = classify_abi(deployment.abi)
    if sip is None:
        return None
    return {
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


def import_contract(session: Session, chain: StacksApiDatabase, contract_id: str) -> list[int]:
    """Import one contract from the Stacks API database now (admin `import-contract`): store
    it, or refresh it if stored, with its job pending. Returns job ids to dispatch after the
    commit; raises ContractImportError with Hiro's API's message."""
    lookup = chain.deployment_of(contract_id)
    if not lookup.found:
        raise ContractImportError("Contract not found")
    if lookup.missing is not None:
        raise ContractImportError(f"Contract deploy {lookup.missing} not found")
    if lookup.deployment is None:
        raise ContractImportError("Contract does not have an interface")
    row = contract_row(lookup.deployment)
    if row is None:
        raise ContractImportError("Not a token contract")
    new = session.execute(
        insert(SmartContract)
        .values(row)
        .on_conflict_do_nothing(index_elements=[SmartContract.principal])
        .returning(*_ADDED_COLUMNS)
    ).first()
    if new is not None:
        record(session, [_contract_added(new)])
        return create_contract_jobs(session, [new.id])
    stored = session.scalars(
        update(SmartContract)
        .where(SmartContract.principal == row["principal"])
        .values(updated_at=func.now())
        .returning(SmartContract.id)
    ).one()
    created = create_contract_jobs(session, [stored])
    return created or repend_contract_job(session, stored)
