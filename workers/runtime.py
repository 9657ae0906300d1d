"""Per-process clients for tasks, built on first use (after the prefork, never shared)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from celery import Celery
from sqlalchemy import Engine

from shared.config import Settings
from shared.db import make_engine, make_session_factory
from shared.metadata.fetch import FetchLimits, MetadataFetcher
from shared.metadata.netguard import NetGuard
from shared.metadata.uris import GatewaySettings
from shared.queues import JobMessage
from shared.services.metadata import MetadataService
from shared.services.processing import Processor
from shared.services.runner import JobContext
from shared.stacks.api_db import StacksApiDatabase
from shared.stacks.node import StacksNodeClient

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    processor: Processor
    chain: StacksApiDatabase | None
    engines: tuple[Engine, ...]

    @property
    def ctx(self) -> JobContext:
        return self.processor.ctx


_lock = threading.Lock()
_runtime: tuple[int, Runtime] | None = None


def get_runtime(app: Celery) -> Runtime:
    """The runtime of this process; a forked child builds its own."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime[0] != os.getpid():
            _runtime = (os.getpid(), build_runtime(app.conf.token_metadata_settings, app))
        return _runtime[1]


def build_runtime(settings: Settings, app: Celery) -> Runtime:
    engine = make_engine(settings.database_url, pool_size=10, application_name="tm-worker")
    ctx = JobContext(settings, make_session_factory(engine), JobEnqueuer(app))
    processor = Processor(ctx, node_client(settings), metadata_service(settings))
    chain = None
    engines: tuple[Engine, ...] = (engine,)
    if settings.stacks_api_database_url:
        chain_engine = make_engine(
            settings.stacks_api_database_url, pool_size=2, application_name="tm-importer"
        )
        chain = StacksApiDatabase(chain_engine)
        engines = (engine, chain_engine)
    return Runtime(processor, chain, engines)


def node_client(settings: Settings) -> StacksNodeClient:
    if not settings.stacks_node_rpc_url:
        raise SystemExit(
            "configuration error: STACKS_NODE_RPC_URL is not set "
            "(`make run` starts a simulated network when no node is configured)"
        )
    return StacksNodeClient(settings.stacks_node_rpc_url, timeout_s=settings.stacks_node_timeout_s)


def metadata_service(settings: Settings) -> MetadataService:
    timeout_s = settings.metadata_fetch_timeout_ms / 1000
    limits = FetchLimits(
        timeout_s=timeout_s,
        total_timeout_s=timeout_s * 2,
        max_bytes=settings.metadata_max_payload_byte_size,
        max_redirects=settings.metadata_fetch_max_redirections,
    )
    guard = NetGuard(allow_private=settings.metadata_fetch_allow_private_networks)
    gateways = GatewaySettings(
        ipfs=settings.public_gateway_ipfs,
        ipfs_extra_header=settings.public_gateway_ipfs_extra_header,
        ipfs_replaced=settings.public_gateway_ipfs_replaced,
        arweave=settings.public_gateway_arweave,
    )
    fetcher = MetadataFetcher(limits, guard)
    return MetadataService(fetcher, gateways, settings.metadata_max_immediate_uri_retries)


class JobEnqueuer:
    """Sends job messages by task name over one pooled producer connection."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        if not messages:
            return
        with self.app.producer_or_acquire() as producer:
            for message in messages:
                self.app.send_task(
                    message.task_name, args=[message.job_id], queue=message.queue,
                    producer=producer,
                )
        log.debug("enqueued %d job messages", len(messages))
