"""Building a worker process's clients from its settings: one place for every client.

The workers package calls `build_processor` once per process and `build_image_cacher` for
the image queue; tests call the same functions. Both fetchers (metadata and images) get
their limits, SSRF guard and gateways from the helpers here, and share the process's host
slots and rate-limited hosts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import redis
from sqlalchemy.orm import Session, sessionmaker

from shared.config import ConfigError, Settings
from shared.images.processing import DEFAULT_MAX_IMAGE_BYTES, ImageCacher
from shared.images.storage import build_storage
from shared.indexing.gateway_fetch import GatewayFetcher
from shared.indexing.host_slots import HostSlots
from shared.indexing.polite_fetch import MetadataService
from shared.indexing.processing import Processor
from shared.indexing.rate_limits import RateLimitedHosts
from shared.jobs.leases import LeaseKeeper
from shared.jobs.runner import JobContext
from shared.jobs.turns import TokenTurns
from shared.metadata.fetch import FetchLimits, MetadataFetcher
from shared.metadata.gateways import GatewayPool
from shared.metadata.netguard import NetGuard
from shared.metadata.uris import GatewaySettings, gateway_hosts
from shared.queues import Enqueue
from shared.stacks.api_db import StacksApiDatabase
from shared.stacks.node import StacksNodeClient

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


def build_image_cacher(
    settings: Settings,
    sessions: sessionmaker[Session],
    slots: HostSlots | None = None,
    rate_limits: RateLimitedHosts | None = None,
) -> ImageCacher:
    """An image cacher with its own fetcher, capped at the image size; the host slots and
    rate-limited hosts are best shared with the process's metadata fetches."""
    max_bytes = settings.image_cache_max_byte_size or DEFAULT_MAX_IMAGE_BYTES
    image_fetcher = fetcher(settings, max_bytes)
    rate_limits = rate_limits or RateLimitedHosts(
        sessions, settings.metadata_rate_limited_host_retry_after
    )
    return ImageCacher(
        settings,
        sessions,
        image_fetcher,
        gateway_settings(settings),
        build_storage(settings),
        rate_limits,
        slots,
        gateway_fetcher(settings, image_fetcher, rate_limits, slots),
    )


def host_slots(settings: Settings, client: redis.Redis | None = None) -> HostSlots:
    """Per-host fetch caps shared through Redis; the gateways get their own, larger cap."""
    gateways = gateway_hosts(gateway_settings(settings))
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
        adaptive=settings.metadata_host_adaptive_concurrency,
    )


def metadata_service(
    settings: Settings,
    rate_limits: RateLimitedHosts | None = None,
    slots: HostSlots | None = None,
) -> MetadataService:
    metadata_fetcher = fetcher(settings, settings.metadata_max_payload_byte_size)
    return MetadataService(
        metadata_fetcher,
        gateway_settings(settings),
        settings.metadata_max_immediate_uri_retries,
        rate_limits,
        slots,
        gateway_fetcher(settings, metadata_fetcher, rate_limits, slots),
    )


def gateway_fetcher(
    settings: Settings,
    guarded: MetadataFetcher,
    rate_limits: RateLimitedHosts | None,
    slots: HostSlots | None,
) -> GatewayFetcher:
    """Fetches of ipfs:// and ar:// documents through the configured gateways, their health
    shared through Redis. A document's first request runs on the calling thread; hedges and
    failovers on the fetcher's threads, made as needed up to twice the fetch threads."""
    pool = GatewayPool(
        slots.client if slots is not None else redis.Redis.from_url(settings.redis_url)
    )
    threads = 2 * settings.worker_fetch_concurrency
    return GatewayFetcher(
        guarded, pool, rate_limits, slots, threads, verify=settings.ipfs_verify_content
    )


def fetcher(settings: Settings, max_bytes: int) -> MetadataFetcher:
    """A guarded HTTP fetcher: the fetch timeout per stage and twice it in all, the redirect
    limit, and private addresses refused unless the settings allow them."""
    timeout_s = settings.metadata_fetch_timeout_ms / 1000
    limits = FetchLimits(
        timeout_s=timeout_s,
        total_timeout_s=timeout_s * 2,
        max_bytes=max_bytes,
        max_redirects=settings.metadata_fetch_max_redirections,
    )
    return MetadataFetcher(
        limits, NetGuard(allow_private=settings.metadata_fetch_allow_private_networks)
    )


def gateway_settings(settings: Settings) -> GatewaySettings:
    return GatewaySettings(
        ipfs=settings.public_gateway_ipfs,
        ipfs_extra_header=settings.public_gateway_ipfs_extra_header,
        ipfs_replaced=settings.public_gateway_ipfs_replaced,
        arweave=settings.public_gateway_arweave,
    )
