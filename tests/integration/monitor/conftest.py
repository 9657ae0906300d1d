"""The chain monitor against a Stacks API database the tests write block by block.

`chain` writes canonical (and, for re-orgs, non-canonical) rows through the devnet's
`ChainWriter`/`EventWriter`; `monitor` runs the monitor's steps in-process with a recording
broker; `db` reads and arranges our own rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token

from devnet import chain_db
from devnet.chain_events import EventWriter, Tx, metadata_update, sft_mint
from devnet.chain_writer import Block, ChainWriter
from devnet.nft_history import BURN, MINT, TRANSFER
from devnet.scenario import Contract, deployer_address
from shared.chain.monitor import FollowResult, MonitorSettings, follow_chain
from shared.config import Settings
from shared.db import session_scope
from shared.indexing.contracts import load_contract, store_contract_tokens
from shared.jobs.runner import JobContext
from shared.jobs.transitions import ClaimedJob
from shared.models import (
    ChainTip,
    Job,
    JobStatus,
    NftOwnership,
    Sip,
    SmartContract,
    Token,
    UpdateNotification,
)
from shared.queues import JobMessage
from shared.stacks.api_db import StacksApiDatabase

SENDER = deployer_address("someone-else")

_BULK_TOKENS = text(
    """
    WITH t AS (
      INSERT INTO tokens (smart_contract_id, type, token_number, block_height,
                          index_block_hash, tx_id, tx_index, updated_at)
      SELECT c.id, 'nft', n, 1, '0x000001', '0x123456', 0, NOW()
      FROM smart_contracts c, generate_series(CAST(:first AS int), CAST(:last AS int)) AS n
      WHERE c.principal = :principal
      RETURNING id
    )
    INSERT INTO jobs (token_id, status) SELECT id, 'done' FROM t
    """
)


class RecordingBroker:
    def __init__(self) -> None:
        self.messages: list[JobMessage] = []

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.messages.extend(messages)

    def take(self) -> list[JobMessage]:
        taken, self.messages = self.messages, []
        return taken


class Chain:
    """Writes the Stacks API database; every call is committed at once (autocommit)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.writer = ChainWriter(conn)
        self.events = EventWriter(self.writer)

    def block(self) -> Block:
        """A new canonical block on the head, which becomes the chain tip."""
        block = self.writer.append_block()
        self.writer.set_tip(block)
        return block

    def blocks_until(self, height: int) -> Block:
        block = self.writer.head
        while block is None or block.height < height:
            block = self.block()
        return block

    def deploy(self, contract: Contract, block: Block | None = None) -> Block:
        block = block or self.block()
        self.writer.deploy_contract(contract, block)
        return block

    def call(self, block: Block, contract_id: str, sender: str = SENDER, **options: Any) -> Tx:
        return self.events.contract_call(block, sender, contract_id, **options)

    def notify(
        self,
        block: Block,
        contract_id: str,
        *,
        emitter: str | None = None,
        sender: str | None = None,
        **payload: Any,
    ) -> None:
        """A SIP-019 print, by default from the token contract called by its deployer."""
        token_class = payload.pop("token_class", "nft")
        tx = self.call(block, emitter or contract_id, sender or contract_id.split(".")[0])
        value = metadata_update(token_class, contract_id, **payload)
        self.events.print_event(tx, emitter or contract_id, value)

    def print(self, block: Block, emitter: str, value: Any, sender: str = SENDER) -> None:
        self.events.print_event(self.call(block, emitter, sender), emitter, value)

    def mint_nft(
        self,
        block: Block,
        contract_id: str,
        *token_ids: int | Any,
        recipient: str = SENDER,
        asset: str = "nft-token",
    ) -> Tx:
        tx = self.call(block, contract_id)
        for token_id in token_ids:
            self.events.nft_mint(tx, f"{contract_id}::{asset}", token_id, recipient)
        return tx

    def transfer_nft(
        self,
        block: Block,
        contract_id: str,
        token_id: int | Any,
        sender: str,
        recipient: str,
        asset: str = "nft-token",
    ) -> Tx:
        """A transfer, in a contract call of its own by the owner."""
        tx = self.call(block, contract_id, sender, function="transfer")
        self.events.nft_event(tx, TRANSFER, f"{contract_id}::{asset}", token_id, sender, recipient)
        return tx

    def burn_nft(
        self, block: Block, contract_id: str, token_id: int, owner: str, asset: str = "nft-token"
    ) -> Tx:
        tx = self.call(block, contract_id, owner, function="burn")
        self.events.nft_event(tx, BURN, f"{contract_id}::{asset}", token_id, owner, None)
        return tx

    def mint_sft(self, block: Block, contract_id: str, *mints: tuple[int, int]) -> None:
        tx = self.call(block, contract_id)
        for token_id, amount in mints:
            self.events.print_event(tx, contract_id, sft_mint(token_id, amount, SENDER))

    def ft_supply(self, block: Block, contract_id: str, minted: int = 0, burnt: int = 0) -> None:
        tx = self.call(block, contract_id)
        if minted:
            self.events.ft_event(tx, MINT, f"{contract_id}::ft-token", minted, SENDER)
        if burnt:
            self.events.ft_event(tx, BURN, f"{contract_id}::ft-token", burnt, SENDER)

    def orphan(self, *heights: int) -> None:
        """A re-org: these blocks (and their rows) stop being canonical."""
        for height in sorted(heights, reverse=True):
            self.writer.mark_non_canonical(height)


@dataclass
class Monitor:
    """Runs the monitor in-process; job messages land in `broker`."""

    ctx: JobContext
    chain: StacksApiDatabase
    broker: RecordingBroker
    params: MonitorSettings = field(default_factory=MonitorSettings)

    def run(self, **overrides: Any) -> FollowResult:
        params = MonitorSettings(**{**self.params.__dict__, **overrides})
        return follow_chain(self.ctx, self.chain, params)


class Db:
    """Our own database: arrange rows, read results."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def contract(self, sip: Sip = Sip.SIP_009, tokens: int = 0, **token_fields: Any) -> str:
        """A contract stored at block 1 with tokens 1..n, every job done; its principal."""
        with session_scope(self.sessions) as s:
            contract = add_contract(s, sip=sip)
            for number in range(1, tokens + 1):
                add_token(s, contract, number, **token_fields)
            return contract.principal

    def add_tokens(self, principal: str, first: int, last: int) -> None:
        """Processed tokens first..last with done jobs, in one statement (large contracts)."""
        with session_scope(self.sessions) as s:
            s.execute(_BULK_TOKENS, {"principal": principal, "first": first, "last": last})

    def enumerate_tokens(self, principal: str, count: int) -> None:
        """What a contract job does for a collection whose `get-last-token-id` is `count`."""
        with session_scope(self.sessions) as s:
            contract = s.scalars(
                select(SmartContract).where(SmartContract.principal == principal)
            ).one()
            job_id = s.scalars(select(Job.id).where(Job.smart_contract_id == contract.id)).one()
            ref = load_contract(s, contract.id)
            assert ref is not None
            store_contract_tokens(s, ref, count, ClaimedJob(job_id, None, contract.id, 0))

    def owners(self, principal: str) -> dict[int, NftOwnership]:
        """The ownership rows of a contract's tokens, by token number."""
        with session_scope(self.sessions) as s:
            rows = s.scalars(
                select(NftOwnership)
                .join(SmartContract, SmartContract.id == NftOwnership.smart_contract_id)
                .where(SmartContract.principal == principal)
            )
            return {row.token_number: row for row in rows}

    def tokens(self, principal: str) -> dict[int, Token]:
        with session_scope(self.sessions) as s:
            rows = s.scalars(
                select(Token).join(SmartContract).where(SmartContract.principal == principal)
            )
            return {token.token_number: token for token in rows}

    def jobs(self, status: JobStatus | None = None) -> list[Job]:
        with session_scope(self.sessions) as s:
            query = select(Job).order_by(Job.id)
            if status is not None:
                query = query.where(Job.status == status)
            return list(s.scalars(query))

    def token_job(self, principal: str, number: int) -> Job:
        token = self.tokens(principal)[number]
        with session_scope(self.sessions) as s:
            return s.scalars(select(Job).where(Job.token_id == token.id)).one()

    def set_jobs(self, status: JobStatus, **values: Any) -> None:
        with session_scope(self.sessions) as s:
            s.execute(update(Job).values(status=status, **values))

    def age_tokens(self, principal: str, by: timedelta) -> None:
        with session_scope(self.sessions) as s:
            ids = select(SmartContract.id).where(SmartContract.principal == principal)
            s.execute(
                update(Token)
                .where(Token.smart_contract_id.in_(ids))
                .values(updated_at=func.now() - by)
            )

    def notifications(self, principal: str, number: int | None = None) -> list[Any]:
        """Notification rows of a contract's tokens, latest first."""
        with session_scope(self.sessions) as s:
            query = (
                select(
                    Token.token_number,
                    UpdateNotification.update_mode,
                    UpdateNotification.ttl,
                    UpdateNotification.block_height,
                )
                .join(Token, Token.id == UpdateNotification.token_id)
                .join(SmartContract)
                .where(SmartContract.principal == principal)
                .order_by(
                    UpdateNotification.block_height.desc(),
                    UpdateNotification.tx_index.desc(),
                    UpdateNotification.event_index.desc(),
                )
            )
            if number is not None:
                query = query.where(Token.token_number == number)
            return list(s.execute(query))

    def latest_notification(self, principal: str, number: int = 1) -> Any:
        rows = self.notifications(principal, number)
        return rows[0] if rows else None

    def principals(self) -> set[str]:
        with session_scope(self.sessions) as s:
            return set(s.scalars(select(SmartContract.principal)))

    def checkpoint(self) -> tuple[int, str | None]:
        with session_scope(self.sessions) as s:
            tip = s.scalars(select(ChainTip)).one()
            return tip.block_height, tip.index_block_hash

    def count(self, model: type[Any]) -> int:
        with session_scope(self.sessions) as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Db:
    return Db(sessions)


@pytest.fixture
def sba_conn(stacks_api_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        chain_db.create_schema(conn)
        yield conn


@pytest.fixture
def chain(sba_conn: psycopg.Connection[Any]) -> Chain:
    return Chain(sba_conn)


@pytest.fixture
def broker() -> RecordingBroker:
    return RecordingBroker()


@pytest.fixture
def monitor(
    settings: Settings,
    sessions: sessionmaker[Session],
    stacks_api_database_url: str,
    broker: RecordingBroker,
) -> Iterator[Monitor]:
    engine = create_engine(stacks_api_database_url, pool_size=2)
    ctx = JobContext(settings, sessions, broker)
    yield Monitor(ctx, StacksApiDatabase(engine), broker, MonitorSettings.from_settings(settings))
    engine.dispose()


@pytest.fixture
def following(chain: Chain, monitor: Monitor) -> Block:
    """A chain at block 1 that the monitor has cold-started on: it follows from block 2."""
    genesis = chain.block()
    monitor.run()
    return genesis
