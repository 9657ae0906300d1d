"""A simulated chain kept running while a test drives the real job code round by round: import
the contracts, run their jobs, then pend token jobs again (as a mint, a notification, a
refresh would) and run them once more, without a broker or a worker process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from devnet import chain_db
from devnet.contracts import Contract
from devnet.scenario import Scenario
from devnet.server import Devnet
from shared.chain.monitor import MonitorSettings, follow_chain
from shared.config import Settings
from shared.db import session_scope
from shared.indexing.processing import Processor
from shared.jobs.transitions import mark_queued
from shared.models import Job, SmartContract, Token
from shared.stacks.api_db import StacksApiDatabase
from shared.wiring import build_processor
from support.broker import RecordingBroker


@dataclass
class ChainRun:
    processor: Processor
    sessions: sessionmaker[Session]
    broker: RecordingBroker

    def drain(self) -> None:
        """Run every message sent so far, and those they send; token jobs as a batch each."""
        while self.broker.messages:
            message = self.broker.messages.pop(0)
            if message.is_contract:
                self.processor.process_contract(message.job_id)
            else:
                self.processor.process_tokens([message.job_id])

    def job_id(self, contract: Contract, number: int = 1) -> int:
        with session_scope(self.sessions) as session:
            return session.scalars(
                select(Job.id)
                .join(Token, Token.id == Job.token_id)
                .join(SmartContract, SmartContract.id == Token.smart_contract_id)
                .where(SmartContract.principal == contract.contract_id)
                .where(Token.token_number == number)
            ).one()

    def run_now(self, job_id: int) -> None:
        """The pending job, due at once (its back-off skipped), queued and run."""
        with session_scope(self.sessions) as session:
            session.execute(update(Job).where(Job.id == job_id).values(retry_after=None))
            messages = mark_queued(session, [job_id])
        assert [m.job_id for m in messages] == [job_id]
        self.processor.process_tokens([job_id])


@contextmanager
def chain_run(
    settings: Settings,
    sessions: sessionmaker[Session],
    sba_url: str,
    *contracts: Contract,
) -> Iterator[ChainRun]:
    """The contracts on a simulated chain and node, imported and indexed once."""
    scenario = Scenario.build(contracts, chain_tip_height=5)
    with chain_db.connect(sba_url, autocommit=True) as conn:
        chain_db.create_schema(conn)
        chain_db.seed(conn, scenario)
    engine = create_engine(sba_url)
    broker = RecordingBroker()
    try:
        with Devnet(scenario) as net:
            settings = replace(settings, stacks_node_rpc_url=net.node_url)
            chain = StacksApiDatabase(engine)
            processor = build_processor(settings, sessions, broker, chain)
            processor.turns = None  # every message through the broker double
            follow_chain(processor.ctx, chain, MonitorSettings.from_settings(settings))
            run = ChainRun(processor, sessions, broker)
            run.drain()
            try:
                yield run
            finally:
                processor.metadata.fetcher.close()
    finally:
        engine.dispose()


def attempts_of(sessions: sessionmaker[Session], job_id: int) -> list[dict[str, object]]:
    """The job's token's fetch attempts, newest first."""
    with session_scope(sessions) as session:
        rows = session.execute(
            text(
                "SELECT a.* FROM fetch_attempts a JOIN jobs j ON j.token_id = a.token_id"
                " WHERE j.id = :job ORDER BY a.id DESC"
            ),
            {"job": job_id},
        )
        return [dict(row._mapping) for row in rows]
