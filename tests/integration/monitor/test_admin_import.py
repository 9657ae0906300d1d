"""Admin `import-contract` from the Stacks API database, with Hiro's API's answers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from devnet.scenario import fungible_token, nft_collection, plain_contract
from shared.chain.contract_import import ContractImportError, import_contract
from shared.db import session_scope
from shared.models import JobStatus, Sip, SmartContract


def imported(db, monitor, contract_id: str) -> list[int]:  # type: ignore[no-untyped-def]
    with session_scope(db.sessions) as s:
        return import_contract(s, monitor.chain, contract_id)


def test_import_fails_if_contract_not_found(monitor, db, following) -> None:
    with pytest.raises(ContractImportError, match=r"^Contract not found$"):
        imported(db, monitor, nft_collection("nowhere", 1, 1).contract_id)


def test_import_fails_if_the_deploy_failed(chain, monitor, db, following) -> None:
    broken = nft_collection("broken", 1, 1, failed=True)
    chain.deploy(broken)
    with pytest.raises(ContractImportError, match=r"^Contract not found$"):
        imported(db, monitor, broken.contract_id)


def test_import_fails_if_contract_has_no_interface(chain, monitor, db, following) -> None:
    coin = fungible_token("coin", 1, symbol="CN")
    chain.deploy(coin)
    chain.writer.conn.execute(
        "UPDATE smart_contracts SET abi = 'null'::jsonb WHERE contract_id = %s",
        (coin.contract_id,),
    )
    with pytest.raises(ContractImportError, match=r"^Contract does not have an interface$"):
        imported(db, monitor, coin.contract_id)


def test_import_fails_if_not_a_token_contract(chain, monitor, db, following) -> None:
    market = plain_contract("market", 1)
    chain.deploy(market)
    with pytest.raises(ContractImportError, match=r"^Not a token contract$"):
        imported(db, monitor, market.contract_id)


def test_import_stores_the_contract_with_a_pending_job(chain, monitor, db, following) -> None:
    coin = fungible_token("coin", 1, symbol="CN")
    block = chain.deploy(coin)  # not yet seen by the monitor
    (job_id,) = imported(db, monitor, coin.contract_id)
    (job,) = db.jobs()
    assert (job.id, job.status, job.smart_contract_id is not None) == (
        job_id,
        JobStatus.PENDING,
        True,
    )
    assert imported(db, monitor, coin.contract_id) == []  # already pending
    db.set_jobs(JobStatus.DONE)
    assert imported(db, monitor, coin.contract_id) == [job_id]  # done: enumerated again
    monitor.run()  # the monitor meets the same deploy later: nothing doubles
    assert len(db.jobs()) == 1
    with session_scope(db.sessions) as s:
        stored = s.scalars(select(SmartContract)).one()
    assert (stored.sip, stored.block_height) == (Sip.SIP_010, block.height)
    assert stored.index_block_hash == "0x" + block.index_block_hash.hex()
