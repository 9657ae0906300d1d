"""The two job kinds, wired to their clients: what a worker task calls."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

import redis
from sqlalchemy.orm import Session, sessionmaker

from shared.config import ConfigError, Settings
from shared.db import session_scope
from shared.errors import RetryableJobError
from shared.metadata.fetch import FetchLimits, MetadataFetcher
from shared.metadata.netguard import NetGuard
from shared.metadata.uris import GatewaySettings
from shared.models import JobStatus, Sip
from shared.queues import Enqueue
from shared.services.contracts import (
    ContractRef,
    load_contract,
    store_contract_tokens,
    store_minted_tokens,
    token_count_for,
)
from shared.services.host_slots import HostSlots
from shared.services.jobs import ClaimedJob, JobOutcome, finish_job
from shared.services.leases import LeaseKeeper
from shared.services.metadata import MetadataService
from shared.services.rate_limits import RateLimitedHosts
from shared.services.runner import BatchWork, JobContext, NeedsHost, run_batch, run_job
from shared.services.tokens import (
    TokenData,
    TokenRef,
    add_token_metadata,
    load_token,
    load_tokens,
    read_token_data,
    read_token_facts,
    store_tokens_data,
)
from shared.services.turns import TokenTurns
from shared.stacks.api_db import StacksApiDatabase
from shared.stacks.node import StacksNodeClient


@dataclass
class Processor:
    """A worker process's clients; built once per process by the workers package."""

    ctx: JobContext
    node: StacksNodeClient
    metadata: MetadataService
    chain: StacksApiDatabase | None = None
    # Node calls and metadata fetches of token batches run here, shared by every task thread.
    fetch_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="fetch")
    )
    # Hands token jobs out in turns across contracts; without it a contract job sends its
    # tokens' jobs itself, all at once.
    turns: TokenTurns | None = None

    def process_contract(self, job_id: int) -> JobOutcome | None:
        return run_job(self.ctx, job_id, self._contract_work)

    def process_token(self, job_id: int) -> JobOutcome | None:
        return run_job(self.ctx, job_id, self._token_work)

    def process_tokens(self, job_ids: Sequence[int]) -> dict[int, JobOutcome]:
        """A batch of token jobs: one claim, concurrent reads, one commit; then more token
        jobs are handed out, in turns, if no worker did a moment ago."""
        outcomes = run_batch(self.ctx, job_ids, self._token_batch, self.fetch_pool)
        if self.turns is not None:
            self.turns.refill()
        return outcomes

    @property
    def _token_batch(self) -> BatchWork[TokenRef, TokenData]:
        return BatchWork(load_tokens, self._read_token, self._store_tokens)

    def _read_token(self, token: TokenRef) -> TokenData | NeedsHost[TokenData]:
        """The contract calls, then the metadata once its host has a free slot."""
        data = read_token_facts(self.node, token)
        rest = partial(add_token_metadata, self.metadata.load, token, data)
        slots = self.metadata.host_slots
        host = self.metadata.host_to_wait_for(data.uri, token.token_number) if data.uri else None
        if slots is None or host is None:
            return rest()
        return NeedsHost(slots, host, rest)

    def _store_tokens(self, session: Session, pairs: Sequence[tuple[TokenRef, TokenData]]) -> None:
        cache_images = self.ctx.settings.image_cache_processor_enabled
        store_tokens_data(session, pairs, cache_images=cache_images)

    def _contract_work(self, job: ClaimedJob) -> Sequence[int]:
        assert job.smart_contract_id is not None  # noqa: S101 - claim_job guarantees the kind
        with session_scope(self.ctx.sessions) as session:
            contract = load_contract(session, job.smart_contract_id)
            if contract is None:
                finish_job(session, job, JobOutcome(JobStatus.DONE))
                return []
        if contract.sip == Sip.SIP_013:
            return self._sft_contract_work(contract, job)
        limit = self.ctx.settings.metadata_max_nft_contract_token_count
        count = token_count_for(self.node, contract, limit)
        with session_scope(self.ctx.sessions) as session:
            job_ids = store_contract_tokens(session, contract, count, job)
        return self._hand_out(job_ids)

    def _hand_out(self, job_ids: Sequence[int]) -> Sequence[int]:
        """New token jobs, committed: in turns with every other contract's, or all at once."""
        if self.turns is None or not job_ids:
            return job_ids
        self.turns.first_helping()
        return []

    def _sft_contract_work(self, contract: ContractRef, job: ClaimedJob) -> Sequence[int]:
        """SFT tokens exist once minted: read the contract's `sft_mint` prints so far."""
        if self.chain is None:
            raise RetryableJobError("no Stacks API database configured to read SFT mints from")
        tip = self.chain.chain_tip()
        mints = self.chain.sft_mints(contract.principal, tip.block_height if tip else 0)
        with session_scope(self.ctx.sessions) as session:
            job_ids = store_minted_tokens(session, contract, mints, job)
        return self._hand_out(job_ids)

    def _token_work(self, job: ClaimedJob) -> Sequence[int]:
        assert job.token_id is not None  # noqa: S101 - claim_job guarantees the kind
        with session_scope(self.ctx.sessions) as session:
            token = load_token(session, job.token_id)
            if token is None:
                finish_job(session, job, JobOutcome(JobStatus.DONE))
                return []
        data = read_token_data(self.node, self.metadata.load, token)
        with session_scope(self.ctx.sessions) as session:
            self._store_tokens(session, [(token, data)])
            finish_job(session, job, JobOutcome(JobStatus.DONE))
        return []


def build_processor(
    settings: Settings,
    sessions: sessionmaker[Session],
    enqueue: Enqueue,
    chain: StacksApiDatabase | None = None,
) -> Processor:
    """Wire the clients a worker process needs from its settings."""
    if not settings.stacks_node_rpc_url:
        raise ConfigError(
            "STACKS_NODE_RPC_URL is not set "
            "(`make run` starts a simulated network when no node is configured)"
        )
    node = StacksNodeClient(settings.stacks_node_rpc_url, timeout_s=settings.stacks_node_timeout_s)
    ctx = JobContext(settings, sessions, enqueue, LeaseKeeper(sessions))
    rate_limits = RateLimitedHosts(sessions, settings.metadata_rate_limited_host_retry_after)
    client = redis.Redis.from_url(settings.redis_url)
    metadata = metadata_service(settings, rate_limits, host_slots(settings, client))
    pool = ThreadPoolExecutor(settings.worker_fetch_concurrency, thread_name_prefix="fetch")
    return Processor(ctx, node, metadata, chain, pool, TokenTurns(ctx, client))


def host_slots(settings: Settings, client: redis.Redis | None = None) -> HostSlots:
    """Per-host fetch caps shared through Redis; the gateways get their own, larger cap."""
    gateways = (
        urlsplit(settings.public_gateway_ipfs).hostname or "",
        urlsplit(settings.public_gateway_arweave).hostname or "",
    )
    longest_fetch_s = settings.metadata_fetch_timeout_ms / 1000 * 2  # FetchLimits' total
    hold_s = longest_fetch_s + HOLD_MARGIN_S
    return HostSlots(
        client or redis.Redis.from_url(settings.redis_url),
        settings.metadata_host_concurrency_limit,
        settings.public_gateway_concurrency_limit,
        gateways,
        hold_s,
        # A slot is reused while its hold still outlasts a whole fetch, and given back to
        # the other workers when it has been idle this long.
        keep_idle_s=SLOT_KEEP_IDLE_S,
        reuse_for_s=HOLD_MARGIN_S - 1.0,
        max_wait_s=min(HOST_SLOT_MAX_WAIT_S, settings.job_queue_timeout_ms / 1000 / 4),
    )


# How much longer than the longest fetch a slot is held in Redis; a worker that dies frees
# its slots after that. A slot is reused only within this margin (less a second) of being
# taken, so that the fetch it serves ends before its hold does.
HOLD_MARGIN_S = 5.0
SLOT_KEEP_IDLE_S = 0.25
# The longest a token waits in its worker for a slot of a busy host before it is deferred
# (pending again, no retry used). Long enough that a worker's whole intake for one host (16
# batches of 50 tokens at 16 slots and 100 ms a fetch: 5 s) never bounces; short enough that
# a host whose 16 fetches hang until their timeout frees the worker's task threads for other
# hosts within seconds, and leaves most of the job's time limit to the fetch itself.
HOST_SLOT_MAX_WAIT_S = 10.0


def metadata_service(
    settings: Settings,
    rate_limits: RateLimitedHosts | None = None,
    slots: HostSlots | None = None,
) -> MetadataService:
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
    retries = settings.metadata_max_immediate_uri_retries
    return MetadataService(fetcher, gateways, retries, rate_limits, slots)
