"""The whole path in one process: SBA database -> importer / monitor -> contract job -> token
jobs -> API.

Real Postgres for both databases, the simulated node and metadata host on loopback; the
broker is replaced by a recorder so each step can be driven and checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, func, select

from api.app import create_app
from api.db import close_db
from devnet import chain_db
from devnet.chain_writer import ChainWriter
from devnet.nft_history import owner_of
from devnet.scenario import Scenario, nft_collection, plain_contract
from devnet.server import Devnet
from shared.chain.checkpoint import is_following
from shared.chain.monitor import MonitorSettings, advance, follow_chain
from shared.db import session_scope
from shared.indexing.processing import Processor
from shared.models import (
    ChainTip,
    Job,
    JobStatus,
    Metadata,
    NftOwnership,
    SmartContract,
    Token,
)
from shared.queues import JobMessage
from shared.stacks.api_db import StacksApiDatabase
from shared.wiring import build_processor


class RecordingBroker:
    def __init__(self) -> None:
        self.messages: list[JobMessage] = []

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.messages.extend(messages)

    def take(self) -> list[JobMessage]:
        taken, self.messages = self.messages, []
        return taken


def seed(url: str, scenario: Scenario) -> None:
    with chain_db.connect(url, autocommit=True) as conn:
        chain_db.create_schema(conn)
        chain_db.seed(conn, scenario)


@pytest.fixture
def chain(stacks_api_database_url: str) -> Iterator[StacksApiDatabase]:
    engine = create_engine(stacks_api_database_url)
    yield StacksApiDatabase(engine)
    engine.dispose()


SCENARIO = Scenario.build(
    [
        plain_contract("market", 3),
        nft_collection("monkeys", 12, 3, transfers=(1, 5, 1), burns=(12,)),
        nft_collection("broken-deploy", 5, 4, failed=True),
        nft_collection("badges", 3, 6),
    ],
    chain_tip_height=8,
)


@pytest.fixture
def devnet() -> Iterator[Devnet]:
    net = Devnet(SCENARIO).start()
    yield net
    net.stop()


@pytest.fixture
def broker() -> RecordingBroker:
    return RecordingBroker()


@pytest.fixture
def processor(settings, sessions, devnet, broker) -> Processor:
    return build_processor(replace(settings, stacks_node_rpc_url=devnet.node_url), sessions, broker)


def test_importer_stores_token_contracts_once_and_checkpoints(
    sessions, chain, stacks_api_database_url
) -> None:
    seed(stacks_api_database_url, SCENARIO)
    with session_scope(sessions) as session:
        step = advance(session, chain, MonitorSettings(import_batch_size=500))
    assert len(step.job_ids) == 2
    with session_scope(sessions) as session:
        caught_up = is_following(session)  # the import is done: the monitor follows blocks
        principals = set(session.scalars(select(SmartContract.principal)))
        tip = session.scalars(select(ChainTip)).one()
        again = advance(session, chain, MonitorSettings(import_batch_size=500))
    monkeys, badges = SCENARIO.contracts[1], SCENARIO.contracts[3]
    assert caught_up
    assert principals == {monkeys.contract_id, badges.contract_id}
    assert tip.block_height == 8
    assert tip.index_block_hash.startswith("0x")
    assert again.job_ids == []


@pytest.mark.parametrize(
    ("batch_size", "checkpoints"),
    [
        (7, [3, 5, 10]),  # two whole blocks of 3 fit in 7 rows; the rest reaches the tip
        (2, [1, 2, 3, 4, 5, 6, 10]),  # a block larger than the batch is still taken whole
    ],
)
def test_importer_batches_whole_blocks_and_resumes(
    sessions, chain, stacks_api_database_url, batch_size: int, checkpoints: list[int]
) -> None:
    contracts = [nft_collection(f"c{i}", 1, 2 + i // 3) for i in range(15)]  # blocks 2-6, 3 each
    seed(stacks_api_database_url, Scenario.build(contracts, chain_tip_height=10))
    params = MonitorSettings(import_batch_size=batch_size)
    heights = []
    for _ in range(10):  # each iteration is a fresh transaction, as after a restart
        with session_scope(sessions) as session:
            step = advance(session, chain, params)
            caught_up = is_following(session)
        heights.append(step.checkpoint.block_height)
        if caught_up:
            break
    assert heights == checkpoints
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(SmartContract)) == 15
        assert session.scalar(select(func.count()).select_from(Job)) == 15


def test_contract_and_token_jobs_index_a_collection_end_to_end(
    sessions, chain, stacks_api_database_url, processor, broker, settings, devnet
) -> None:
    seed(stacks_api_database_url, SCENARIO)
    assert follow_chain(processor.ctx, chain, MonitorSettings.from_settings(settings)).jobs == 2
    contract_messages = broker.take()
    assert [m.is_contract for m in contract_messages] == [True, True]
    for message in contract_messages:
        assert processor.process_contract(message.job_id).status == JobStatus.DONE
    token_messages = broker.take()
    assert len(token_messages) == 15
    assert all(not m.is_contract for m in token_messages)
    for message in token_messages:
        assert processor.process_token(message.job_id).status == JobStatus.DONE
    assert processor.process_token(token_messages[0].job_id) is None  # a second delivery

    monkeys = SCENARIO.contracts[1].contract_id
    with session_scope(sessions) as session:
        statuses = set(session.scalars(select(Job.status)))
        names = session.scalars(
            select(Metadata.name)
            .join(Token)
            .join(SmartContract)
            .where(SmartContract.principal == monkeys)
            .order_by(Token.token_number)
        ).all()
    assert statuses == {JobStatus.DONE}
    assert len(names) == 12

    app = create_app(settings)
    response = app.test_client().get(f"/metadata/v1/nft/{monkeys}/7")
    close_db(app)
    assert response.status_code == 200
    body = response.json
    assert body["token_uri"].endswith("/7.json")
    assert body["metadata"]["name"] == names[6]
    assert body["metadata"]["attributes"]


def run_all_jobs(processor: Processor, broker: RecordingBroker) -> int:
    processed = 0
    while messages := broker.take():
        for message in messages:
            run = processor.process_contract if message.is_contract else processor.process_token
            assert run(message.job_id).status == JobStatus.DONE
            processed += 1
    return processed


def test_the_monitor_follows_a_collection_deployed_after_the_cold_start(
    chain, stacks_api_database_url, processor, broker, settings, devnet
) -> None:
    seed(stacks_api_database_url, SCENARIO)
    params = MonitorSettings.from_settings(settings)
    first = follow_chain(processor.ctx, chain, params)  # history import, then following
    assert first.checkpoint.block_height == SCENARIO.chain_tip_height
    assert run_all_jobs(processor, broker) == 2 + 15

    late = nft_collection("late", 2, SCENARIO.chain_tip_height + 1)
    devnet.deploy(late)
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        writer = ChainWriter(conn)
        block = writer.append_block()
        writer.deploy_contract(late, block)
        writer.set_tip(block)
    assert follow_chain(processor.ctx, chain, params).blocks == 1
    assert run_all_jobs(processor, broker) == 1 + 2
    # The contract jobs queued the cold-start collections: that step read their owners.
    monkeys = SCENARIO.contracts[1]
    with session_scope(processor.ctx.sessions) as session:
        owners = dict(
            session.execute(
                select(NftOwnership.token_number, NftOwnership.owner).where(
                    NftOwnership.smart_contract_id
                    == select(SmartContract.id)
                    .where(SmartContract.principal == monkeys.contract_id)
                    .scalar_subquery()
                )
            ).all()
        )
    assert owners == {n: owner_of(monkeys, n) for n in range(1, 13)}

    app = create_app(settings)
    response = app.test_client().get(f"/metadata/v1/nft/{late.contract_id}/2")
    status = app.test_client().get("/metadata/v1/").json
    close_db(app)
    assert response.status_code == 200
    assert response.json["token_uri"].endswith("/2.json")
    assert status["chain_tip"]["block_height"] == block.height
