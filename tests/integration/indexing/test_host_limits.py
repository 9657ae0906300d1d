"""Adaptive per-host limits on the real Redis: cut on overload, grown on clean answers, shared
by every worker, honoured by the slots (docs/host-slots.md#adaptive)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import redis
from support.http_server import Reply, ScriptedServer

from shared.errors import HostBusyError, MetadataHttpError
from shared.host_slot_keys import LIMIT_PREFIX
from shared.indexing.host_limits import AdaptiveLimits, AimdRule
from shared.indexing.host_slots import KEY_PREFIX, HostSlots
from shared.indexing.polite_fetch import polite_fetch
from shared.metadata.fetch import FetchLimits, MetadataFetcher
from shared.metadata.netguard import NetGuard
from shared.metadata.outcomes import FetchOutcome, classify_fetch
from shared.metadata.uris import FetchableUrl
from shared.reads.hosts import read_limits

NO_COOLDOWN = AimdRule(cooldown_s=0.0)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    forget_hosts(client)  # 127.0.0.1 may have a limit from other tests' fetches
    yield client
    forget_hosts(client)
    client.close()


def forget_hosts(client: redis.Redis) -> None:
    for prefix in (KEY_PREFIX, LIMIT_PREFIX):
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)


@pytest.fixture
def host() -> str:
    return f"h-{uuid.uuid4().hex[:8]}.example"


def limits(client: redis.Redis, cap: int = 20, rule: AimdRule = NO_COOLDOWN) -> AdaptiveLimits:
    return AdaptiveLimits(client, lambda _host: cap, rule, flush_every=1)


def warmed(adaptive: AdaptiveLimits, host: str) -> AdaptiveLimits:
    """Past slow start: at the cap, after enough clean answers and no overload."""
    while adaptive.limit(host) < adaptive.cap_for(host):
        adaptive.succeeded(host, 0.0)  # no usual latency yet: no hold between cuts in tests
    return adaptive


def test_a_new_host_starts_low_and_doubles_each_round_trip_up_to_its_cap(client, host) -> None:
    adaptive = limits(client, cap=20)
    assert adaptive.limit(host) == 4
    seen = []
    for _ in range(20):
        adaptive.succeeded(host, 0.01)
        seen.append(adaptive.limit(host))
    assert seen[:4] == [5, 6, 7, 8]  # one more per clean answer: 4 answers double 4
    assert max(seen) == 20


def test_a_new_host_gets_its_starting_limit_of_slots(client, host) -> None:
    slots = HostSlots(client, 20, 20, [], 30, adaptive=True)
    with ExitStack() as held:
        for _ in range(4):
            held.enter_context(slots.slot(host))
        with pytest.raises(HostBusyError), slots.slot(host):
            pass


def test_an_overload_cuts_the_limit_by_the_factor(client, host) -> None:
    adaptive = warmed(limits(client, cap=20), host)
    assert adaptive.limit(host) == 20
    adaptive.overloaded(host, "429")
    assert adaptive.limit(host) == 14
    adaptive.overloaded(host, "5xx")
    assert adaptive.limit(host) == 9


def test_a_burst_of_failures_from_one_overload_cuts_once(client, host) -> None:
    adaptive = warmed(limits(client, cap=20, rule=AimdRule(cooldown_s=30.0)), host)
    for _ in range(10):
        adaptive.overloaded(host, "429")
    assert adaptive.limit(host) == 14


def test_the_limit_never_goes_below_one(client, host) -> None:
    adaptive = limits(client, cap=4)
    for _ in range(10):
        adaptive.overloaded(host, "timeout")
    assert adaptive.limit(host) == 1


def test_clean_answers_grow_the_limit_by_one_per_limits_worth_up_to_the_cap(client, host) -> None:
    # Without the slow approach to the level of the last failure (tested below).
    rule = AimdRule(cooldown_s=0.0, forget_ceiling_s=0.0)
    adaptive = warmed(limits(client, cap=6, rule=rule), host)
    for _ in range(3):
        adaptive.overloaded(host, "429")  # 6 -> 4 -> 2 -> 1
    assert adaptive.limit(host) == 1
    grown = []
    for _ in range(40):
        adaptive.succeeded(host, 0.01)
        grown.append(adaptive.limit(host))
    assert grown[0] == 2  # one success is a limit's worth at 1
    assert max(grown) == 6  # and never past the cap
    assert grown == sorted(grown)


def test_near_the_level_it_last_failed_at_the_limit_grows_ten_times_slower(client, host) -> None:
    adaptive = warmed(limits(client, cap=100), host)
    adaptive.overloaded(host, "429")  # failed at 100: now 70, ceiling 100
    assert adaptive.limit(host) == 70
    successes = 0
    while adaptive.limit(host) < 99:
        adaptive.succeeded(host, 0.01)
        successes += 1
    fast = successes  # one limit's worth a step: 70 + 71 + ... + 98
    assert fast == sum(range(70, 99))
    while adaptive.limit(host) < 100:
        adaptive.succeeded(host, 0.01)
        successes += 1
    assert successes - fast == 990  # at the ceiling: ten limits' worth for one step


def test_latency_climbing_far_above_the_usual_cuts_the_limit(client, host) -> None:
    adaptive = warmed(limits(client, cap=20), host)
    adaptive.succeeded(host, 2.0)  # 200 times the usual, and over a second more
    assert adaptive.limit(host) == 18


def test_every_worker_sees_and_moves_the_same_limit(client, host) -> None:
    first, second = warmed(limits(client, cap=20), host), limits(client, cap=20)
    first.overloaded(host, "429")
    second.overloaded(host, "429")
    assert second.limit(host) == 9
    slots = HostSlots(client, 20, 20, [], 30, adaptive=True)
    slots.try_now(host)  # a worker that never reported learns it with its first slot
    assert slots.limit_for(host) == 9


def test_slots_honour_the_adaptive_limit_below_the_cap(client, host) -> None:
    slots = HostSlots(client, 4, 4, [], 30, adaptive=True)
    assert slots.limits is not None
    slots.limits.overloaded(host, "429")  # 4 (where a new host starts) -> 2
    with ExitStack() as held:
        held.enter_context(slots.slot(host))
        held.enter_context(slots.slot(host))
        with pytest.raises(HostBusyError), slots.slot(host):
            pass


def test_fetches_report_their_ends_and_the_admin_view_reads_them(client) -> None:
    slots = HostSlots(client, 10, 10, [], 30, adaptive=True)
    assert slots.limits is not None
    slots.limits.flush_every = 1
    with ScriptedServer() as server, MetadataFetcher(FetchLimits(), NetGuard(True)) as fetcher:
        server.route("/ok", Reply(200, b"{}"))
        server.route("/down", Reply(503, b"busy"))
        server.route("/gone", Reply(404, b"no"))
        polite_fetch(fetcher, FetchableUrl(server.url + "/ok", None, {}), None, slots)
        with pytest.raises(MetadataHttpError):
            polite_fetch(fetcher, FetchableUrl(server.url + "/gone", None, {}), None, slots)
        assert slots.limit_for("127.0.0.1") == 5  # from 4, one clean answer; a 404 is no signal
        with pytest.raises(MetadataHttpError):
            polite_fetch(fetcher, FetchableUrl(server.url + "/down", None, {}), None, slots)
    assert slots.limit_for("127.0.0.1") == 3
    [entry] = [e for e in read_limits(client) if e["host"] == "127.0.0.1"]
    assert (entry["limit"], entry["cap"], entry["reason"]) == ("3", "10", "5xx")


def test_without_adaptation_the_cap_is_the_limit(client, host) -> None:
    slots = HostSlots(client, 3, 3, [], 30)
    assert slots.limits is None
    assert slots.limit_for(host) == 3


def test_a_429_without_retry_after_cuts_the_limit_and_defers_without_banning_the_host(
    client,
) -> None:
    """Too many at once, no time given: the cut limit is the answer, not a host-wide pause."""
    slots = HostSlots(client, 10, 10, [], 30, adaptive=True)
    with ScriptedServer() as server, MetadataFetcher(FetchLimits(), NetGuard(True)) as fetcher:
        server.route("/busy", Reply(429, b"too many"))
        with pytest.raises(HostBusyError) as busy:
            polite_fetch(fetcher, FetchableUrl(server.url + "/busy", None, {}), None, slots)
    assert 1.0 <= (busy.value.retry_after_s or 0) <= 2.0
    assert classify_fetch(busy.value) == FetchOutcome.RATE_LIMITED
    assert slots.limit_for("127.0.0.1") == 2  # from where a new host starts, 4
