"""Several IPFS gateways on loopback addresses and the real Redis: the healthiest is asked
first, the next on its failure, a second at once when the first is slow (docs/gateways.md)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace

import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker
from support.http_server import Reply, ScriptedServer
from support.processes import wait_until

from shared.errors import (
    MetadataHttpError,
    MetadataParseError,
    MetadataServerError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    RetryableJobError,
)
from shared.host_slot_keys import KEY_PREFIX, LIMIT_PREFIX
from shared.indexing.gateway_fetch import GatewayFetcher
from shared.indexing.host_slots import HostSlots
from shared.indexing.polite_fetch import MetadataService
from shared.indexing.rate_limits import RateLimitedHosts
from shared.metadata.fetch import Cancellation, Fetched, FetchLimits, MetadataFetcher
from shared.metadata.gateways import HEALTH_PREFIX, GatewayPool
from shared.metadata.netguard import NetGuard
from shared.metadata.uris import FetchableUrl, GatewaySettings, fetchable_url
from shared.wiring import build_image_cacher, host_slots

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
PATH = f"/ipfs/{CID}/1.json"
DOC = b'{"name": "gm"}'
ADDRESSES = ("127.0.0.21", "127.0.0.22", "127.0.0.23")
REFUSING = "127.0.0.24"
STALLED = "127.0.0.26"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    forget_gateways(client)
    yield client
    forget_gateways(client)
    client.close()


def forget_gateways(client: redis.Redis) -> None:
    for prefix in (HEALTH_PREFIX, KEY_PREFIX, LIMIT_PREFIX):
        for key in client.scan_iter(prefix + "127.0.0.2*"):
            client.delete(key)


@pytest.fixture
def gateways() -> Iterator[list[ScriptedServer]]:
    with (
        ScriptedServer(ADDRESSES[0]) as a,
        ScriptedServer(ADDRESSES[1]) as b,
        ScriptedServer(ADDRESSES[2]) as c,
    ):
        for server in (a, b, c):
            server.route(PATH, Reply(body=DOC))
        yield [a, b, c]


def through(*bases: str) -> FetchableUrl:
    return fetchable_url(f"ipfs://{CID}/1.json", GatewaySettings(ipfs=",".join(bases)))


def urls(servers: list[ScriptedServer]) -> list[str]:
    return [server.url for server in servers]


def pool(client: redis.Redis, unknown_p90_s: float = 0.5) -> GatewayPool:
    return GatewayPool(client, refresh_s=0.0, flush_every=1, unknown_p90_s=unknown_p90_s)


def gateway_fetcher(
    gateway_pool: GatewayPool, rate_limits: RateLimitedHosts | None = None, timeout_s: float = 5
) -> GatewayFetcher:
    limits = FetchLimits(timeout_s=timeout_s, total_timeout_s=timeout_s)
    fetcher = MetadataFetcher(limits, NetGuard(allow_private=True))
    return GatewayFetcher(fetcher, gateway_pool, rate_limits, None, threads=4)


def requests_counted(gateway: str, outcome: str) -> float:
    labels = {"gateway": gateway, "outcome": outcome}
    return REGISTRY.get_sample_value("token_metadata_gateway_requests_total", labels) or 0.0


def serving(servers: list[ScriptedServer], target: FetchableUrl) -> ScriptedServer:
    return next(server for server in servers if target.url.startswith(server.url))


def address(server: ScriptedServer) -> str:
    return server.server.server_address[0]


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind((REFUSING, 0))
        port = sock.getsockname()[1]
    return f"http://{REFUSING}:{port}"


def test_one_gateway_is_asked_once_as_before(client, gateways) -> None:
    a = gateways[0]
    target = through(a.url)
    assert target.other_gateways == ()
    before = requests_counted(ADDRESSES[0], "ok")
    assert gateway_fetcher(pool(client)).fetch(target).body == DOC
    assert a.hits[PATH] == 1
    assert requests_counted(ADDRESSES[0], "ok") == before + 1


def test_a_gateway_answering_500_fails_over_to_the_next(client, gateways) -> None:
    a, b, c = gateways
    a.route(PATH, Reply(500, b"oops"))
    before = requests_counted(ADDRESSES[0], "http_error")
    assert gateway_fetcher(pool(client)).fetch(through(*urls(gateways))).body == DOC
    assert (a.hits[PATH], b.hits[PATH], c.hits[PATH]) == (1, 1, 0)
    assert requests_counted(ADDRESSES[0], "http_error") == before + 1


def test_a_gateway_that_times_out_fails_over_to_the_next(client, gateways) -> None:
    a, b, _ = gateways
    a.route(PATH, Reply(body=DOC, delay_s=3.0))
    fetcher = gateway_fetcher(pool(client, unknown_p90_s=2.0), timeout_s=0.3)  # no hedge first
    started = time.monotonic()
    assert fetcher.fetch(through(*urls(gateways))).body == DOC
    assert time.monotonic() - started < 2.0
    assert b.hits[PATH] == 1


def test_a_gateway_refusing_connections_fails_over_to_the_next(client, gateways) -> None:
    b = gateways[1]
    assert gateway_fetcher(pool(client)).fetch(through(refused_url(), b.url)).body == DOC
    assert b.hits[PATH] == 1


def test_a_rate_limited_gateway_is_skipped_for_the_next(
    client, gateways, sessions: sessionmaker[Session]
) -> None:
    a, b, _ = gateways
    a.route(PATH, Reply(429, headers={"Retry-After": "30"}))
    fetcher = gateway_fetcher(pool(client), RateLimitedHosts(sessions))
    target = through(a.url, b.url)
    assert fetcher.fetch(target).body == DOC
    assert fetcher.fetch(target).body == DOC  # A is now known rate limited: no request to it
    assert (a.hits[PATH], b.hits[PATH]) == (1, 2)
    assert fetcher.first_choice(target).url.startswith(b.url)


def test_a_slow_gateway_is_hedged_and_the_faster_answer_wins(client, gateways) -> None:
    gateway_pool = pool(client)
    fetcher = gateway_fetcher(gateway_pool)
    target = through(*urls(gateways))
    for _ in range(6):  # every gateway measured fast
        fetcher.fetch(target)
    asked = sum(server.hits[PATH] for server in gateways)
    first, second = (
        serving(gateways, u) for u in gateway_pool.order(target.through_every_gateway())[:2]
    )
    first.route(PATH, Reply(body=DOC, delay_s=1.0))
    host = address(first)
    cancelled = requests_counted(host, "cancelled")
    second_hits = second.hits[PATH]
    started = time.monotonic()
    assert fetcher.fetch(target).body == DOC
    assert time.monotonic() - started < 0.5
    assert sum(server.hits[PATH] for server in gateways) == asked + 2
    assert second.hits[PATH] == second_hits + 1
    wait_until(lambda: requests_counted(host, "cancelled") > cancelled, 3.0, "the loser cancelled")


class ThreadsNoted(MetadataFetcher):
    """The guarded fetcher, noting which thread made each request."""

    def __init__(self, limits: FetchLimits) -> None:
        super().__init__(limits, NetGuard(allow_private=True))
        self.threads: list[int] = []

    def fetch(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        cancelled: Cancellation | None = None,
    ) -> Fetched:
        self.threads.append(threading.get_ident())
        return super().fetch(url, headers, max_bytes, cancelled)


def test_the_first_request_runs_on_the_calling_thread_a_hedge_elsewhere(client, gateways) -> None:
    fetcher = ThreadsNoted(FetchLimits(timeout_s=5, total_timeout_s=5))
    gateway_fetcher = GatewayFetcher(fetcher, pool(client, unknown_p90_s=0.1), None, None)
    target = through(*urls(gateways))
    assert gateway_fetcher.fetch(target).body == DOC
    assert fetcher.threads == [threading.get_ident()]

    gateways[0].route(PATH, Reply(body=DOC, delay_s=1.0))  # the first is slow: hedged
    fetcher.threads.clear()
    assert gateway_fetcher.fetch(target).body == DOC
    assert fetcher.threads[0] == threading.get_ident()
    assert len(fetcher.threads) == 2
    assert fetcher.threads[1] != threading.get_ident()


def test_a_hedge_cut_short_by_the_first_answer_is_no_latency_sample(client, gateways) -> None:
    a, b, _ = gateways
    a.route(PATH, Reply(body=DOC, delay_s=0.3))  # answers after its hedge is due
    b.route(PATH, Reply(body=DOC, delay_s=2.0))  # the hedge: slower still
    gateway_pool = pool(client, unknown_p90_s=0.05)
    gateway_pool.record(ADDRESSES[1], "ok", 0.5)  # B measured: its hedge is cancelled
    cancelled = requests_counted(ADDRESSES[1], "cancelled")
    assert gateway_fetcher(gateway_pool).fetch(through(a.url, b.url)).body == DOC
    assert b.hits[PATH] == 1
    # The hedge's thread counts its end just after the caller returned.
    wait_until(
        lambda: requests_counted(ADDRESSES[1], "cancelled") == cancelled + 1,
        2.0,
        "the hedge counted cancelled",
        0.01,
    )
    # Cancelled after some 250 ms, B is no faster for it: its latency stays as it was.
    health = gateway_pool.health(ADDRESSES[:2])
    assert health[ADDRESSES[0]].latency_ms is not None
    assert health[ADDRESSES[1]].latency_ms == pytest.approx(500.0)


def test_a_hedge_to_a_gateway_not_measured_yet_is_let_finish(client, gateways) -> None:
    a, b, _ = gateways
    a.route(PATH, Reply(body=DOC, delay_s=0.3))
    b.route(PATH, Reply(body=DOC, delay_s=0.6))
    gateway_pool = pool(client, unknown_p90_s=0.05)
    ok = requests_counted(ADDRESSES[1], "ok")
    started = time.monotonic()
    assert gateway_fetcher(gateway_pool).fetch(through(a.url, b.url)).body == DOC
    assert time.monotonic() - started < 0.6  # A's answer, not B's
    # B's answer still comes, and measures B (a slower gateway than A).
    wait_until(lambda: gateway_pool.measured(ADDRESSES[1]), 3.0, "B measured", 0.01)
    assert requests_counted(ADDRESSES[1], "ok") == ok + 1
    assert gateway_pool.health([ADDRESSES[1]])[ADDRESSES[1]].latency_ms >= 500


class HangingFailover(MetadataFetcher):
    """A first gateway answering 500, and a second whose request never ends in time (a
    request that does not keep to the fetcher's limits)."""

    def __init__(self, first: str) -> None:
        super().__init__(FetchLimits(timeout_s=0.2, total_timeout_s=0.2), NetGuard())
        self.first = first
        self.release = threading.Event()

    def fetch(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        cancelled: Cancellation | None = None,
    ) -> Fetched:
        if url.startswith(self.first):
            raise MetadataServerError(f"HTTP 500 from {url}", status=500)
        self.release.wait(10.0)
        return Fetched(200, DOC)


def test_a_race_whose_request_never_ends_gives_up_in_time(client, gateways, monkeypatch) -> None:
    monkeypatch.setattr("shared.indexing.gateway_fetch.GIVE_UP_GUARD_S", 0.1)
    a, b, _ = gateways
    fetcher = HangingFailover(a.url)
    try:
        started = time.monotonic()
        with pytest.raises(MetadataTimeoutError):
            GatewayFetcher(fetcher, pool(client), None, None).fetch(through(a.url, b.url))
        assert time.monotonic() - started < 2.0  # 2 gateways x 2 x 0.2 s + 0.1 s
    finally:
        fetcher.release.set()


class StalledGateway:
    """A gateway that accepts connections and never answers; notes when each is closed."""

    def __init__(self, address: str) -> None:
        self.listener = socket.create_server((address, 0))
        self.url = f"http://{address}:{self.listener.getsockname()[1]}"
        self.accepted = 0
        self.closed = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.accepted += 1
            threading.Thread(
                target=self._read_until_closed, args=(connection,), daemon=True
            ).start()

    def _read_until_closed(self, connection: socket.socket) -> None:
        with connection:
            while True:
                try:
                    if not connection.recv(65536):
                        break
                except OSError:
                    break
        with self._lock:
            self.closed += 1

    def close(self) -> None:
        self.listener.close()


def test_a_winning_hedge_returns_at_once_while_the_first_is_stalled(client, gateways) -> None:
    stalled = StalledGateway(STALLED)
    try:
        b = gateways[1]
        slots = HostSlots(client, 16, 64, (STALLED, *ADDRESSES), 30)
        limits = FetchLimits(timeout_s=10, total_timeout_s=10)
        fetcher = MetadataFetcher(limits, NetGuard(allow_private=True))
        hedge_after_s = 0.1
        gateway_pool = pool(client, unknown_p90_s=hedge_after_s)
        gateway_fetcher = GatewayFetcher(fetcher, gateway_pool, None, slots)
        target = through(stalled.url, b.url)  # neither measured: the stalled one first
        cancelled = requests_counted(STALLED, "cancelled")

        started = time.monotonic()
        assert gateway_fetcher.fetch(target, wait_s=1.0).body == DOC
        # B answers at once when asked, after the hedge delay: the caller, blocked in the
        # stalled request, returns well within libcurl's once-a-second progress look.
        assert time.monotonic() - started < hedge_after_s + 0.4
        assert (stalled.accepted, b.hits[PATH]) == (1, 1)
        assert requests_counted(STALLED, "cancelled") == cancelled + 1
        # The stalled request's connection is closed and its slot given back.
        wait_until(lambda: stalled.closed == 1, 1.0, "the stalled connection closed", 0.01)
        assert client.zcard(KEY_PREFIX + STALLED) == 0
        gateway_fetcher.close()
        fetcher.close()
    finally:
        stalled.close()


def test_failures_move_a_gateway_down_for_every_instance(client, gateways) -> None:
    a, b, _ = gateways
    a.route(PATH, Reply(503, b"down"))
    target = through(a.url, b.url)
    first = gateway_fetcher(pool(client))
    for _ in range(3):
        assert first.fetch(target).body == DOC
    assert a.hits[PATH] == 1  # after its first failure A is asked second
    other_process = pool(client)  # a new instance knows only what Redis holds
    assert other_process.order(target.through_every_gateway())[0].url.startswith(b.url)
    assert gateway_fetcher(other_process).fetch(target).body == DOC
    assert a.hits[PATH] == 1


def test_a_gateways_latency_is_its_answers_not_the_wait_for_its_slot(client, gateways) -> None:
    a = gateways[0]
    slots = HostSlots(client, 1, 1, ADDRESSES, 30)
    limits = FetchLimits(timeout_s=5, total_timeout_s=5)
    fetcher = MetadataFetcher(limits, NetGuard(allow_private=True))
    gateway_pool = pool(client)
    holding = threading.Event()
    release = threading.Event()

    def hold_the_only_slot() -> None:
        with slots.slot(ADDRESSES[0]):
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_only_slot)
    holder.start()
    assert holding.wait(5)
    threading.Timer(0.4, release.set).start()
    started = time.monotonic()
    fetched = GatewayFetcher(fetcher, gateway_pool, None, slots, threads=4).fetch(
        through(a.url), wait_s=5
    )
    took_s = time.monotonic() - started
    holder.join(5)
    assert fetched.body == DOC
    assert took_s >= 0.4  # it did wait for the slot
    assert fetched.elapsed_s is not None
    assert fetched.elapsed_s < 0.2
    latency_ms = GatewayPool(client, refresh_s=0.0).health([ADDRESSES[0]])[ADDRESSES[0]].latency_ms
    assert latency_ms is not None
    assert latency_ms < 200


def test_a_gateways_first_answer_is_reported_at_once_then_in_batches(client) -> None:
    batching = GatewayPool(client, refresh_s=60.0, flush_every=8)
    batching.record(ADDRESSES[0], "ok", 0.5)
    assert GatewayPool(client).health([ADDRESSES[0]])[ADDRESSES[0]].latency_ms == 500.0
    batching.record(ADDRESSES[0], "ok", 0.02)  # measured now: waits for 7 more
    assert GatewayPool(client).health([ADDRESSES[0]])[ADDRESSES[0]].latency_ms == 500.0


def test_a_slow_first_choice_gives_way_to_a_gateway_not_measured_yet(client, gateways) -> None:
    gateway_pool = pool(client)
    candidates = through(*urls(gateways)).through_every_gateway()
    gateway_pool.record(ADDRESSES[0], "ok", 0.02)
    assert gateway_pool.order(candidates)[0] == candidates[0]  # fast: stays first
    for _ in range(30):
        gateway_pool.record(ADDRESSES[0], "ok", 0.5)
    assert gateway_pool.order(candidates)[0] == candidates[1]  # B, not measured yet


def test_a_slot_held_on_a_gateway_found_slow_meanwhile_is_not_used_first(client, gateways) -> None:
    a, b, _ = gateways
    slots = HostSlots(client, 4, 4, ADDRESSES, 30)
    limits = FetchLimits(timeout_s=5, total_timeout_s=5)
    fetcher = MetadataFetcher(limits, NetGuard(allow_private=True))
    gateway_pool = pool(client)
    gateway_fetch = GatewayFetcher(fetcher, gateway_pool, None, slots, threads=4)
    target = through(a.url, b.url)
    grant = slots.request(ADDRESSES[0], lambda _grant: None, 1.0)  # queued for A at first
    assert grant is not None
    gateway_pool.record(ADDRESSES[0], "ok", 0.5)  # then A is found slow, B fast
    gateway_pool.record(ADDRESSES[1], "ok", 0.02)
    with slots.holding(grant):
        assert gateway_fetch.fetch(target, wait_s=1.0).body == DOC
    slots.release(grant)
    assert a.hits[PATH] == 0
    assert b.hits[PATH] == 1
    for _ in range(40):  # A recovers to about 100 ms: about as healthy as B, still second
        gateway_pool.record(ADDRESSES[0], "ok", 0.1)
    assert gateway_pool.order(target.through_every_gateway())[0].url.startswith(b.url)
    grant = slots.request(ADDRESSES[0], lambda _grant: None, 1.0)
    assert grant is not None
    with slots.holding(grant):
        assert gateway_fetch.fetch(target, wait_s=1.0).body == DOC
    slots.release(grant)
    assert a.hits[PATH] == 1


def test_a_404_from_one_gateway_tries_the_next_and_counts_against_it(client, gateways) -> None:
    a, b, _ = gateways
    a.route(PATH, Reply(404, b"no such cid here"))
    gateway_pool = pool(client)
    assert gateway_fetcher(gateway_pool).fetch(through(a.url, b.url)).body == DOC
    assert b.hits[PATH] == 1
    assert gateway_pool.health([ADDRESSES[0]])[ADDRESSES[0]].error_rate > 0


def test_a_404_from_every_gateway_is_the_tokens_error(client, gateways) -> None:
    for server in gateways:
        server.route(PATH, Reply(404, b"no"))
    with pytest.raises(MetadataHttpError) as raised:
        gateway_fetcher(pool(client)).fetch(through(*urls(gateways)))
    assert raised.value.status == 404
    assert all(server.hits[PATH] == 1 for server in gateways)


def test_a_document_too_large_does_not_fail_over(client, gateways) -> None:
    with pytest.raises(MetadataSizeExceededError):
        gateway_fetcher(pool(client)).fetch(through(*urls(gateways)), max_bytes=4)
    assert sum(server.hits[PATH] for server in gateways) == 1


def test_a_document_that_does_not_parse_does_not_fail_over(client, gateways) -> None:
    for server in gateways:
        server.route(PATH, Reply(body=b"not json at all {"))
    settings = GatewaySettings(ipfs=",".join(urls(gateways)))
    gateway_pool = pool(client)
    fetcher = gateway_fetcher(gateway_pool)
    service = MetadataService(fetcher.fetcher, settings, 1, gateway_fetcher=fetcher)
    with pytest.raises(MetadataParseError):
        service.load(f"ipfs://{CID}/1.json", 1)
    assert sum(server.hits[PATH] for server in gateways) == 1


def test_every_configured_gateway_gets_the_gateway_cap(settings) -> None:
    many = replace(
        settings,
        public_gateway_ipfs="http://127.0.0.21:1,http://127.0.0.22:1",
        public_gateway_arweave="http://127.0.0.23:1,http://127.0.0.25:1",
        metadata_host_concurrency_limit=3,
        public_gateway_concurrency_limit=7,
    )
    slots = host_slots(many)
    assert [slots.cap_for(a) for a in (*ADDRESSES, "127.0.0.25")] == [7, 7, 7, 7]
    assert slots.cap_for("127.0.0.1") == 3


def test_a_token_waits_for_the_healthiest_gateway_that_is_not_rate_limited(
    client, gateways, sessions: sessionmaker[Session]
) -> None:
    a, b, _ = gateways
    rate_limits = RateLimitedHosts(sessions)
    rate_limits.note(ADDRESSES[0], 30)
    slots = HostSlots(client, 16, 64, ADDRESSES, 30)
    fetcher = gateway_fetcher(pool(client), rate_limits)
    settings = GatewaySettings(ipfs=f"{a.url},{b.url}")
    service = MetadataService(fetcher.fetcher, settings, 1, rate_limits, slots, fetcher)
    assert service.host_to_wait_for(f"ipfs://{CID}/{{id}}.json", 1) == ADDRESSES[1]
    rate_limits.note(ADDRESSES[1], 30)
    with pytest.raises(RetryableJobError):
        service.host_to_wait_for(f"ipfs://{CID}/{{id}}.json", 1)


def test_an_image_download_fails_over_too(client, gateways, settings, sessions, tmp_path) -> None:
    a, b, _ = gateways
    a.route(PATH, Reply(500, b"oops"))
    many = replace(
        settings, public_gateway_ipfs=f"{a.url},{b.url}", image_cache_local_dir=str(tmp_path)
    )
    cacher = build_image_cacher(many, sessions)
    assert cacher.download(fetchable_url(f"ipfs://{CID}/1.json", cacher.gateways)) == DOC
    assert (a.hits[PATH], b.hits[PATH]) == (1, 1)
