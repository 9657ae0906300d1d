"""A consumer of `GET /changes` that follows the feed from zero, on a thread of its own, while
the real import, monitor, contract jobs and token jobs index a chain and refresh it, ends with
exactly the API's state of every token (docs/change-feed.md#consumers).

The consumer (`support.feed_consumer`) keeps a copy of each token item: whenever an entry names
a token it reads that token again (`POST /tokens/batch`), and forgets it when the API no longer
has it. `tests/e2e/test_change_feed_10k.py` runs the same consumer against the real processes.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from support.feed_consumer import PREFIX, Consumer

from api.app import create_app
from api.db import close_db
from devnet import chain_db
from devnet.chain_events import EventWriter
from devnet.chain_writer import ChainWriter
from devnet.nft_history import MINT, TRANSFER, asset_identifier, owner_of
from devnet.scenario import Scenario, fungible_token, nft_collection
from devnet.server import Devnet
from shared.admin import refresh_tokens
from shared.chain.monitor import MonitorSettings, follow_chain
from shared.config import Settings
from shared.db import session_scope
from shared.indexing.processing import Processor
from shared.models import JobStatus
from shared.queues import JobMessage
from shared.stacks.api_db import StacksApiDatabase
from shared.wiring import build_processor

MONKEYS = nft_collection("monkeys", 12, 3, transfers=(1, 5, 1), burns=(12,))
COIN = fungible_token("coin", 4, symbol="CN")
SCENARIO = Scenario.build([MONKEYS, COIN], chain_tip_height=8)
NEW_OWNER = "SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE"


class Broker:
    def __init__(self) -> None:
        self.messages: list[JobMessage] = []

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.messages.extend(messages)

    def take(self) -> list[JobMessage]:
        taken, self.messages = self.messages, []
        return taken


def api_state(app: Flask) -> dict[tuple[str, str | None], dict[str, Any]]:
    """Every token the API serves for the scenario's contracts, from the collection route and
    the batch route (FT)."""
    client = app.test_client()
    items = client.get(f"{PREFIX}/nft/{MONKEYS.contract_id}", query_string={"limit": 200}).json
    state = {(i["contract_id"], i["token_id"]): i for i in items["results"]}
    body = {"tokens": [{"contract_id": COIN.contract_id}]}
    (coin,) = client.post(f"{PREFIX}/tokens/batch", json=body).json["results"]
    state[(COIN.contract_id, "1")] = coin
    return state


@pytest.fixture
def devnet() -> Iterator[Devnet]:
    with Devnet(SCENARIO) as net:
        yield net


@pytest.fixture
def chain(stacks_api_database_url: str) -> Iterator[StacksApiDatabase]:
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        chain_db.create_schema(conn)
        chain_db.seed(conn, SCENARIO)
    engine = create_engine(stacks_api_database_url)
    yield StacksApiDatabase(engine)
    engine.dispose()


@pytest.fixture
def broker() -> Broker:
    return Broker()


@pytest.fixture
def processor(
    settings: Settings, sessions: sessionmaker[Session], devnet: Devnet, broker: Broker, chain
) -> Iterator[Processor]:
    node_settings = replace(settings, stacks_node_rpc_url=devnet.node_url)
    processor = build_processor(node_settings, sessions, broker, chain)
    yield processor
    processor.metadata.fetcher.close()


def run_jobs(processor: Processor, broker: Broker) -> None:
    """What workers do, a few token jobs at a time."""
    while messages := broker.take():
        tokens = [m.job_id for m in messages if not m.is_contract]
        for message in messages:
            if message.is_contract:
                assert processor.process_contract(message.job_id).status == JobStatus.DONE
        for start in range(0, len(tokens), 5):
            outcomes = processor.process_tokens(tokens[start : start + 5])
            assert {o.status for o in outcomes.values()} == {JobStatus.DONE}


def transfer_block(url: str, token_id: int) -> None:
    """A new block on the Stacks API database: a monkey changes hands, and coins are minted."""
    with chain_db.connect(url, autocommit=True) as conn:
        writer = ChainWriter(conn)
        events = EventWriter(writer)
        block = writer.append_block()
        tx = events.contract_call(block, NEW_OWNER, MONKEYS.contract_id, "transfer")
        sender = owner_of(MONKEYS, token_id)
        events.nft_event(tx, TRANSFER, asset_identifier(MONKEYS), token_id, sender, NEW_OWNER)
        mint = events.contract_call(block, COIN.deployer, COIN.contract_id)
        events.ft_event(mint, MINT, f"{COIN.contract_id}::{COIN.name}", 500, NEW_OWNER)
        writer.set_tip(block)


def test_a_consumer_following_the_feed_ends_with_the_api_s_state(
    settings, sessions, chain, devnet, processor, broker, stacks_api_database_url
) -> None:
    app = create_app(settings)
    consumer = Consumer.in_process(app, limit=7)
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(0.01):
            consumer.catch_up()

    following = threading.Thread(target=follow, name="feed-consumer")
    following.start()
    try:
        params = MonitorSettings.from_settings(settings)
        follow_chain(processor.ctx, chain, params)  # contracts, then owners once enumerated
        run_jobs(processor, broker)
        follow_chain(processor.ctx, chain, params)  # the ownership import
        collection = dataclasses.replace(MONKEYS.collection, description="Repainted monkeys")
        changed = dataclasses.replace(MONKEYS, collection=collection)
        devnet.scenario = dataclasses.replace(SCENARIO, contracts=(changed, COIN))
        with session_scope(sessions) as s:  # the holder of 1-6 asks for a refresh
            processor.ctx.enqueue(refresh_tokens(s, MONKEYS.contract_id, [1, 2, 3, 4, 5, 6]))
        run_jobs(processor, broker)
        transfer_block(stacks_api_database_url, 7)
        follow_chain(processor.ctx, chain, params)
    finally:
        stop.set()
        following.join(30)
    consumer.catch_up()
    state = api_state(app)
    close_db(app)

    assert consumer.items == state
    assert len(state) == 13  # 12 monkeys (a burned one still answers) and the coin
    assert state[(MONKEYS.contract_id, "12")]["burned"] is True
    assert state[(MONKEYS.contract_id, "7")]["owner"] == NEW_OWNER
    descriptions = {n: state[(MONKEYS.contract_id, n)]["metadata"]["description"] for n in "39"}
    assert descriptions["3"] == "Repainted monkeys"
    assert descriptions["9"] != "Repainted monkeys"
    assert {"contract_added", "token_added", "metadata_updated", "owner_changed"} <= set(
        consumer.kinds
    )
    assert {"token_burned", "supply_changed"} <= set(consumer.kinds)
