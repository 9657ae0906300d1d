"""Cold start: the history is imported once (token contracts, in batches of whole blocks,
resumable), then the monitor follows block by block from the same checkpoint."""

from __future__ import annotations

from devnet.scenario import fungible_token, nft_collection, plain_contract
from shared.models import JobStatus, ProcessedBlock, Token


def test_history_is_imported_once_then_followed(chain, monitor, db) -> None:
    monkeys = nft_collection("monkeys", 5, 1)
    coin = fungible_token("coin", 1, symbol="CN")
    chain.blocks_until(2)
    chain.deploy(monkeys)  # 3
    chain.deploy(plain_contract("market", 1))  # 4
    history = chain.deploy(coin)  # 5
    chain.mint_nft(history, monkeys.contract_id, 6)  # not replayed: enumeration covers it
    chain.notify(history, monkeys.contract_id)
    chain.blocks_until(8)

    first = monitor.run()
    assert db.principals() == {monkeys.contract_id, coin.contract_id}
    assert [m.is_contract for m in monitor.broker.take()] == [True, True]
    assert db.count(Token) == 0
    assert db.checkpoint()[0] == 8
    assert db.count(ProcessedBlock) == 8  # now following
    assert first.blocks == 0

    assert monitor.run().steps == 1  # nothing new: no second import
    chain.mint_nft(chain.block(), monkeys.contract_id, 7)  # 9: followed
    assert monitor.run().blocks == 1
    assert sorted(db.tokens(monkeys.contract_id)) == [7]
    assert {job.status for job in db.jobs()} == {JobStatus.QUEUED}


def test_an_interrupted_history_import_resumes_where_it_stopped(chain, monitor, db) -> None:
    for n in range(12):
        chain.deploy(nft_collection(f"c{n}", 1, 1))  # blocks 1-12
    checkpoints = []
    while db.count(ProcessedBlock) == 0:
        result = monitor.run(import_batch_size=5, time_budget_s=0)  # one batch per run
        checkpoints.append(result.checkpoint.block_height)
    assert checkpoints == [5, 10, 12]
    assert len(db.principals()) == 12
    assert len(db.jobs()) == 12


def test_an_empty_chain_is_waited_for(chain, monitor, db) -> None:
    result = monitor.run()
    assert (result.steps, result.checkpoint) == (1, None)
    assert db.checkpoint() == (1, None)
    chain.deploy(nft_collection("first", 1, 1))
    monitor.run()
    assert len(db.principals()) == 1
