"""Adaptive per-host limits on the real Redis: cut on overload, grown on clean answers, shared
by every worker, honoured by the slots (docs/host-slots.md#adaptive)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import redis
from support.http_server import Reply, ScriptedServer

from shared.errors import HostBusyError, MetadataHttpError
from shared.host_slot_keys import LIMIT_PREFIX
from shared.indexing import host_limits
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
    """At the cap at the end of slow start (no overload yet). Its usual latency is 0 ms: no
    hold between cuts (two round trips) in tests."""
    cap = adaptive.cap_for(host)
    adaptive.client.hset(LIMIT_PREFIX + host, mapping={"limit": cap, "base_ms": 0})
    adaptive.learn(host, cap)
    return adaptive


def past_slow_start(adaptive: AdaptiveLimits, host: str) -> AdaptiveLimits:
    """At the cap after slow start ended with an overload, the level that failed forgotten."""
    warmed(adaptive, host)
    adaptive.overloaded(host, "429")
    # Long ago: the next overload is a new event, and the level that failed is forgotten.
    adaptive.client.hset(
        LIMIT_PREFIX + host, mapping={"limit": adaptive.cap_for(host), "cut_at": 1}
    )
    adaptive.learn(host, adaptive.cap_for(host))
    return adaptive


def test_a_new_host_starts_low_and_doubles_each_round_trip_up_to_its_cap(client, host) -> None:
    slots = HostSlots(client, 20, 20, [], 30, adaptive=True)
    assert slots.limits is not None
    slots.limits.flush_every = 1
    assert slots.limit_for(host) == 4
    held = [slots.try_now(host) for _ in range(4)]
    seen = []
    while len(seen) < 30:  # a round trip: each slot held answers and is used again at once,
        for _ in range(len(held)):  # and the room its answer made is taken
            slots.limits.succeeded(host, 0.01)
            seen.append(slots.limit_for(host))
            while (grant := slots.try_now(host)) is not None:
                held.append(grant)
    assert seen[:4] == [5, 6, 7, 8]  # one more per clean answer: 4 answers double 4
    assert seen[4:12] == list(range(9, 17))  # the next round trip, 8 answers: 16
    assert max(seen) == 20
    for grant in held:
        if grant is not None:
            slots.release(grant)


def test_in_slow_start_the_limit_grows_only_while_it_is_used(client, host) -> None:
    """A limit far ahead of what is in flight would let a burst of new fetches reach the host
    at once: each clean answer allows one more than is in flight, not one more than the limit."""
    slots = HostSlots(client, 20, 20, [], 30, adaptive=True)
    assert slots.limits is not None
    slots.limits.flush_every = 1
    with ExitStack() as held:
        held.enter_context(slots.slot(host))
        for _ in range(10):  # one fetch at a time, answered fine
            slots.limits.succeeded(host, 0.01)
        assert slots.limit_for(host) == 4  # where it started: 1 in flight + 1 is less
        for _ in range(3):
            held.enter_context(slots.slot(host))
        slots.limits.succeeded(host, 0.01)
        assert slots.limit_for(host) == 5  # 4 in flight, one answer: one more


def test_a_new_host_gets_its_starting_limit_of_slots(client, host) -> None:
    slots = HostSlots(client, 20, 20, [], 30, adaptive=True)
    with ExitStack() as held:
        for _ in range(4):
            held.enter_context(slots.slot(host))
        with pytest.raises(HostBusyError), slots.slot(host):
            pass


def test_the_first_overload_ends_slow_start_at_half_later_ones_cut_by_the_factor(
    client, host
) -> None:
    adaptive = warmed(limits(client, cap=20), host)
    assert adaptive.limit(host) == 20
    adaptive.overloaded(host, "429")  # the limit doubled in the last round trip: half worked
    assert adaptive.limit(host) == 10
    adaptive.overloaded(host, "5xx")
    assert adaptive.limit(host) == 7


def test_a_burst_of_failures_from_one_overload_cuts_once(client, host) -> None:
    adaptive = past_slow_start(limits(client, cap=20, rule=AimdRule(cooldown_s=30.0)), host)
    for _ in range(10):
        adaptive.overloaded(host, "429")
    assert adaptive.limit(host) == 14


def test_the_cut_is_taken_from_what_the_host_had_in_flight(client, host) -> None:
    """A limit of 20 with 6 fetches in flight failing: the host failed at 6, not at 20."""
    slots = HostSlots(client, 20, 20, [], 30, adaptive=True)
    assert slots.limits is not None
    slots.limits.flush_every = 1
    past_slow_start(slots.limits, host)
    with ExitStack() as held:
        for _ in range(6):
            held.enter_context(slots.slot(host))
        slots.limits.overloaded(host, "429")
    assert slots.limit_for(host) == 4  # 6 x 0.7
    [entry] = [e for e in read_limits(client) if e["host"] == host]
    assert entry["ceiling"] == "6"


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


def test_just_under_the_level_it_last_failed_at_the_limit_waits_before_probing_it(
    client, host
) -> None:
    adaptive = past_slow_start(limits(client, cap=100, rule=AimdRule(cooldown_s=0.0)), host)
    adaptive.overloaded(host, "429")  # failed at 100: now 70, ceiling 100
    assert adaptive.limit(host) == 70
    successes = 0
    while adaptive.limit(host) < 99:
        adaptive.succeeded(host, 0.01)
        successes += 1
    assert successes == sum(range(70, 99))  # one limit's worth a step: 70 + 71 + ... + 98
    successes = 0
    while adaptive.limit(host) < 100:
        adaptive.succeeded(host, 0.01)
        successes += 1
    assert successes == 1000  # the level that failed is tried again after probe_after answers


def test_once_the_host_takes_the_level_it_failed_at_the_limit_grows_on(client, host) -> None:
    rule = AimdRule(cooldown_s=0.0, probe_after=50)
    adaptive = past_slow_start(limits(client, cap=30, rule=rule), host)
    client.hset(LIMIT_PREFIX + host, "limit", 20)
    adaptive.overloaded(host, "429")  # failed at 20: now 14, ceiling 20
    client.hset(LIMIT_PREFIX + host, "limit", 19)  # just under it
    adaptive.learn(host, 19)
    for _ in range(50):
        adaptive.succeeded(host, 0.01)
    assert adaptive.limit(host) == 20  # the probe
    successes = 0
    while adaptive.limit(host) < 21:
        adaptive.succeeded(host, 0.01)
        successes += 1
    assert successes == 20  # a limit's worth at the level that failed: it is forgotten


def test_the_level_it_last_failed_at_is_forgotten_after_a_while(client, host) -> None:
    rule = AimdRule(cooldown_s=0.0, forget_ceiling_s=0.0, probe_after=1000)
    adaptive = past_slow_start(limits(client, cap=20, rule=rule), host)
    adaptive.overloaded(host, "429")  # failed at 20: now 14
    successes = 0
    while adaptive.limit(host) < 20:
        adaptive.succeeded(host, 0.01)
        successes += 1
    assert successes == sum(range(14, 20))  # no wait just under 20: forgotten at once here


def test_latency_climbing_far_above_the_usual_cuts_the_limit(client, host) -> None:
    adaptive = warmed(limits(client, cap=20), host)
    adaptive.succeeded(host, 2.0)  # 200 times the usual, and over a second more
    assert adaptive.limit(host) == 18  # x0.9, in slow start too: the host queues, not refuses


def test_every_worker_sees_and_moves_the_same_limit(client, host) -> None:
    first, second = warmed(limits(client, cap=20), host), limits(client, cap=20)
    first.overloaded(host, "429")
    second.overloaded(host, "429")
    assert second.limit(host) == 7  # 20 -> 10 (the end of slow start) -> 7
    slots = HostSlots(client, 20, 20, [], 30, adaptive=True)
    slots.try_now(host)  # a worker that never reported learns it with its first slot
    assert slots.limit_for(host) == 7


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
        # Reported: the usual latency is known. The limit stays at 4: one fetch at a time
        # does not use it (slow start grows a limit in use only); a 404 is no signal.
        assert client.hget(LIMIT_PREFIX + "127.0.0.1", "base_ms") is not None
        assert slots.limit_for("127.0.0.1") == 4
        with pytest.raises(MetadataHttpError):
            polite_fetch(fetcher, FetchableUrl(server.url + "/down", None, {}), None, slots)
    assert slots.limit_for("127.0.0.1") == 1  # it failed with only this fetch in flight
    [entry] = [e for e in read_limits(client) if e["host"] == "127.0.0.1"]
    assert (entry["limit"], entry["cap"], entry["reason"]) == ("1", "10", "5xx")


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
    assert slots.limit_for("127.0.0.1") == 1  # refused with only this fetch in flight


class CountedReports:
    """Wraps an AdaptiveLimits' script call to count the reports it makes."""

    def __init__(self, adaptive: AdaptiveLimits) -> None:
        self.count = 0
        self._record = adaptive._record
        adaptive._record = self  # type: ignore[assignment]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self._record(*args, **kwargs)


def test_clean_answers_are_reported_in_batches_as_large_as_the_limit_can_use(
    client, host, monkeypatch
) -> None:
    slots = HostSlots(client, 20, 20, [], 30, adaptive=True)
    adaptive = slots.limits
    assert adaptive is not None
    reports = CountedReports(adaptive)
    with ExitStack() as held:
        for _ in range(4):
            held.enter_context(slots.slot(host))
        for _ in range(4):  # slow start: every two answers, each moving the limit by one
            adaptive.succeeded(host, 0.01)
        assert (reports.count, adaptive.limit(host)) == (2, 6)
    warmed(adaptive, host)
    adaptive.succeeded(host, 0.01)
    adaptive.succeeded(host, 0.01)
    assert reports.count == 3
    for _ in range(500):  # at the cap nothing can grow: by time only
        adaptive.succeeded(host, 0.01)
    assert reports.count == 3
    later = time.monotonic() + host_limits.FLUSH_AFTER_S
    monkeypatch.setattr(host_limits.time, "monotonic", lambda: later)
    adaptive.succeeded(host, 0.01)
    assert reports.count == 4
    adaptive.overloaded(host, "429")  # a failure at once: 20 -> 10
    assert (reports.count, adaptive.limit(host)) == (5, 10)
    client.hset(LIMIT_PREFIX + host, "cut_at", 1)  # long ago: no waiting for the level that failed
    for _ in range(9):  # below the cap: a limit's worth, as the limit grows by one per that
        adaptive.succeeded(host, 0.01)
    assert reports.count == 5
    adaptive.succeeded(host, 0.01)
    assert (reports.count, adaptive.limit(host)) == (6, 11)


def test_at_the_cap_a_slow_answer_is_reported_at_once(client, host) -> None:
    adaptive = warmed(AdaptiveLimits(client, lambda _host: 20, NO_COOLDOWN), host)
    adaptive.succeeded(host, 0.01)
    adaptive.succeeded(host, 0.01)  # reported: at the cap, by time from now on
    reports = CountedReports(adaptive)
    adaptive.succeeded(host, 0.01)
    assert reports.count == 0
    adaptive.succeeded(host, 5.0)  # the batch's mean is far above the usual: no waiting
    assert reports.count == 1
    assert adaptive.limit(host) == 18


def test_a_worker_reporting_by_time_at_the_cap_reports_a_limits_worth_once_cut_elsewhere(
    client, host
) -> None:
    first, second = (
        AdaptiveLimits(client, lambda _host: 20),
        AdaptiveLimits(client, lambda _host: 20),
    )
    warmed(first, host)
    first.succeeded(host, 0.01)
    first.succeeded(host, 0.01)  # reported: at the cap, by time from now on
    second.overloaded(host, "429")  # 20 -> 10
    reports = CountedReports(first)
    first.learn(host, 10)  # as its next slot tells it
    for _ in range(10):
        first.succeeded(host, 0.01)
    assert reports.count == 1
