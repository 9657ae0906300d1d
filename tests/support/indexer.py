"""Runs the real job code over a simulated chain in process, as the workers would: the
chain monitor's import, contract jobs, then token jobs one at a time or as one batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from devnet import chain_db
from devnet.scenario import Contract, Scenario
from devnet.server import Devnet
from shared.chain.monitor import MonitorSettings, follow_chain
from shared.config import Settings
from shared.db import session_scope
from shared.indexing.processing import Processor
from shared.models import Job, Metadata, MetadataAttribute, MetadataProperty, SmartContract, Token
from shared.stacks.api_db import StacksApiDatabase
from shared.wiring import build_processor
from support.broker import RecordingBroker


@dataclass
class Indexer:
    """Runs import, contract jobs and token jobs to completion, as the workers would; with
    `batched`, every token job of a contract runs in one `process_tokens` batch."""

    settings: Settings
    sessions: sessionmaker[Session]
    sba_url: str
    customize: Callable[[Processor], Processor] = lambda processor: processor
    batched: bool = False

    def run(self, *contracts: Contract, chain_tip_height: int = 5) -> None:
        scenario = Scenario.build(contracts, chain_tip_height=chain_tip_height)
        with chain_db.connect(self.sba_url, autocommit=True) as conn:
            chain_db.create_schema(conn)
            chain_db.seed(conn, scenario)
        engine = create_engine(self.sba_url)
        broker = RecordingBroker()
        with Devnet(scenario) as net:
            settings = replace(self.settings, stacks_node_rpc_url=net.node_url)
            chain = StacksApiDatabase(engine)
            processor = self.customize(build_processor(settings, self.sessions, broker, chain))
            follow_chain(processor.ctx, chain, MonitorSettings.from_settings(settings))
            while broker.messages:
                message = broker.messages.pop(0)
                if message.is_contract:
                    processor.process_contract(message.job_id)
                elif self.batched:
                    batch = [message, *broker.messages]
                    broker.messages.clear()
                    processor.process_tokens([m.job_id for m in batch if not m.is_contract])
                    broker.messages.extend(m for m in batch if m.is_contract)
                else:
                    processor.process_token(message.job_id)
            processor.metadata.fetcher.close()
        engine.dispose()

    def token(self, contract: Contract, number: int = 1) -> tuple[Token, Job]:
        with session_scope(self.sessions) as s:
            token = s.scalars(
                select(Token)
                .join(SmartContract)
                .where(SmartContract.principal == contract.contract_id)
                .where(Token.token_number == number)
            ).one()
            return token, s.scalars(select(Job).where(Job.token_id == token.id)).one()

    def metadata(self, token: Token) -> list[dict[str, Any]]:
        rows = []
        with session_scope(self.sessions) as s:
            for m in s.scalars(
                select(Metadata).where(Metadata.token_id == token.id).order_by(Metadata.id)
            ):
                attributes = s.execute(
                    select(
                        MetadataAttribute.trait_type,
                        MetadataAttribute.value,
                        MetadataAttribute.display_type,
                    )
                    .where(MetadataAttribute.metadata_id == m.id)
                    .order_by(MetadataAttribute.id)
                ).all()
                properties = s.execute(
                    select(MetadataProperty.name, MetadataProperty.value)
                    .where(MetadataProperty.metadata_id == m.id)
                    .order_by(MetadataProperty.id)
                ).all()
                rows.append(
                    {
                        "name": m.name,
                        "description": m.description,
                        "image": m.image,
                        "locale": m.l10n_locale,
                        "default": m.l10n_default,
                        "uri": m.l10n_uri,
                        "attributes": [tuple(a) for a in attributes],
                        "properties": dict(properties),
                    }
                )
        return rows
