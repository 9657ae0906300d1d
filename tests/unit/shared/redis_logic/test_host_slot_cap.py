"""The per-host fetch cap on fakeredis: the acquire script's count and holds, expiry of a dead
holder's slots, slots kept idle for the next fetch, and the synchronous `slot`/`holding`.
The real-Redis counterpart is tests/integration/indexing/test_host_slots.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from support.redis_doubles import CountedScript
from support.slot_state import slots_in_use

from shared.errors import HostBusyError
from shared.indexing.host_slots import KEY_PREFIX, Grant, HostSlots

HOST = "m.example"
GATEWAY = "gateway.example"
GATEWAY_LIMIT = 5
HOLD_S = 30.0

Worker = Callable[..., HostSlots]


@pytest.fixture
def worker(client: redis.Redis, clock: object, monkeypatch: pytest.MonkeyPatch) -> Worker:
    """Makes a HostSlots standing for one worker process; each shares the test's Redis. No
    poller thread: the tests call `poll` themselves."""

    def make(limit: int = 2, **options: Any) -> HostSlots:
        slots = HostSlots(client, limit, GATEWAY_LIMIT, [GATEWAY], HOLD_S, **options)
        monkeypatch.setattr(slots, "_start_poller", lambda wake=False: None)
        return slots

    return make


def holds(client: redis.Redis, host: str = HOST) -> dict[str, float]:
    """The host's slots in Redis: member -> when its hold runs out (Redis time)."""
    return {m.decode(): s for m, s in client.zrange(KEY_PREFIX + host, 0, -1, withscores=True)}


def take(slots: HostSlots, host: str = HOST) -> Grant:
    grant = slots.try_now(host)
    assert grant is not None, f"no slot of {host}"
    return grant


# --- the cap


def test_processes_together_get_at_most_the_hosts_limit(worker, client) -> None:
    a, b = worker(limit=3), worker(limit=3)
    take(a)
    take(b)
    take(a)

    assert b.try_now(HOST) is None
    assert a.try_now(HOST) is None
    assert slots_in_use(a, HOST) == slots_in_use(b, HOST) == 3
    assert len(holds(client)) == 3


def test_other_hosts_are_not_affected_by_a_full_host(worker) -> None:
    slots = worker(limit=1)
    take(slots)
    assert slots.try_now(HOST) is None

    assert take(slots, "other.example").key == KEY_PREFIX + "other.example"
    assert slots_in_use(slots, "other.example") == 1


def test_host_names_are_counted_case_insensitively(worker, client) -> None:
    a, b = worker(limit=1), worker(limit=1)
    take(a, "M.Example")

    assert b.try_now("m.EXAMPLE") is None
    assert slots_in_use(a, "m.example") == 1


def test_gateway_hosts_get_their_own_larger_limit(worker) -> None:
    slots = worker(limit=1)
    assert (slots.limit_for("GATEWAY.example"), slots.limit_for(HOST)) == (GATEWAY_LIMIT, 1)

    for _ in range(GATEWAY_LIMIT):
        take(slots, "Gateway.Example")

    assert slots.try_now(GATEWAY) is None
    assert slots_in_use(slots, GATEWAY) == GATEWAY_LIMIT


def test_a_process_at_its_limit_does_not_ask_redis_again(worker, monkeypatch) -> None:
    slots = worker(limit=2)
    take(slots)
    take(slots)
    script = CountedScript(slots, monkeypatch)

    assert slots.try_now(HOST) is None
    assert script.calls == 0


def test_a_slot_is_held_for_the_hold_from_redis_time(worker, client, clock) -> None:
    grant = take(worker())

    assert holds(client) == {grant.member: pytest.approx(clock.wall + HOLD_S, abs=1e-3)}
    # The set itself outlives the longest hold by a second, no more.
    assert client.ttl(KEY_PREFIX + HOST) == math.ceil(HOLD_S) + 1


def test_a_dead_holders_slot_expires_once_its_hold_runs_out(worker, client, clock) -> None:
    dead, alive = worker(limit=1), worker(limit=1)
    abandoned = take(dead)  # never released: the worker died mid-fetch

    clock.advance(HOLD_S - 0.5)
    assert alive.try_now(HOST) is None
    clock.advance(0.501)
    grant = take(alive)

    assert set(holds(client)) == {grant.member}  # the dead holder's member is gone
    assert abandoned.member != grant.member


def test_the_hosts_set_disappears_when_its_last_hold_could_have_run_out(
    worker, client, clock
) -> None:
    take(worker())

    clock.advance(math.ceil(HOLD_S) + 1.001)

    assert not client.exists(KEY_PREFIX + HOST)


def test_a_released_slot_goes_back_to_redis_when_nobody_waits(worker, client) -> None:
    a, b = worker(limit=1), worker(limit=1)
    grant = take(a)

    a.release(grant)

    assert holds(client) == {}
    take(b)


# --- slots kept idle for the next fetch of the host


def keeping(worker: Worker, limit: int = 1) -> HostSlots:
    return worker(limit=limit, keep_idle_s=0.25, reuse_for_s=4.0)


def test_a_released_slot_is_kept_idle_and_still_counts_against_the_cap(worker, client) -> None:
    kept, other = keeping(worker), worker(limit=1)
    grant = take(kept)

    kept.release(grant)

    assert set(holds(client)) == {grant.member}
    assert other.try_now(HOST) is None


def test_a_kept_slot_serves_the_next_fetch_without_asking_redis(worker, monkeypatch) -> None:
    slots = keeping(worker)
    first = take(slots)
    slots.release(first)
    script = CountedScript(slots, monkeypatch)

    again = take(slots)

    assert again.member == first.member
    assert script.calls == 0


def test_a_kept_slot_serves_one_fetch_at_a_time(worker) -> None:
    slots = keeping(worker)
    slots.release(take(slots))

    take(slots)

    assert slots.try_now(HOST) is None


def test_an_idle_slot_goes_back_to_redis_after_the_keep_time(worker, client, clock) -> None:
    kept, other = keeping(worker), worker(limit=1)
    kept.release(take(kept))

    clock.advance(0.2)
    kept.poll()
    assert other.try_now(HOST) is None
    clock.advance(0.05)
    kept.poll()

    assert holds(client) == {}
    take(other)


def test_an_idle_slot_too_old_to_outlast_a_fetch_is_not_reused(worker, client, clock) -> None:
    slots = worker(limit=2, keep_idle_s=60.0, reuse_for_s=4.0)
    old = take(slots)
    slots.release(old)

    clock.advance(4.0)
    new = take(slots)
    assert new.member != old.member
    slots.poll()  # the old one goes back to Redis

    assert set(holds(client)) == {new.member}


def test_a_slot_released_after_its_reuse_time_goes_back_to_redis(worker, client, clock) -> None:
    slots = worker(limit=1, keep_idle_s=60.0, reuse_for_s=4.0)
    grant = take(slots)

    clock.advance(4.0)
    slots.release(grant)

    assert holds(client) == {}


# --- synchronous callers


def test_slot_holds_a_slot_for_its_block_and_gives_it_back_after(worker, client) -> None:
    slots = worker(limit=1)
    with slots.slot(HOST):
        assert slots_in_use(slots, HOST) == 1

    assert holds(client) == {}


def test_slot_gives_its_slot_back_when_the_fetch_fails(worker, client) -> None:
    slots = worker(limit=1)
    with pytest.raises(RuntimeError), slots.slot(HOST):
        raise RuntimeError("fetch failed")

    assert holds(client) == {}


def test_slot_without_a_wait_is_busy_at_once_with_a_spread_out_retry(worker) -> None:
    slots = worker(limit=1)
    with slots.slot(HOST), pytest.raises(HostBusyError) as busy, slots.slot(HOST):
        pass

    assert 1.0 <= busy.value.retry_after_s < 2.0


def test_wait_for_returns_at_once_when_a_slot_is_free(worker) -> None:
    grant = worker().wait_for(HOST, 5.0)

    assert grant.key == KEY_PREFIX + HOST


def test_inside_holding_a_slot_of_the_same_host_serves_without_another(worker, client) -> None:
    slots = worker(limit=1)
    grant = take(slots)

    with slots.holding(grant):
        with slots.slot(HOST):  # the limit is 1: only the held grant can serve this
            assert set(holds(client)) == {grant.member}
        with slots.slot("other.example"):  # another host takes a slot of its own
            assert slots_in_use(slots, "other.example") == 1

    assert set(holds(client)) == {grant.member}  # still the caller's, to release
    with pytest.raises(HostBusyError), slots.slot(HOST):
        pass


def test_a_grant_held_on_one_thread_does_not_serve_another_thread(worker) -> None:
    slots = worker(limit=1)
    grant = take(slots)

    def on_another_thread() -> bool:
        try:
            with slots.slot(HOST):
                return True
        except HostBusyError:
            return False

    with slots.holding(grant), ThreadPoolExecutor(1) as pool:
        assert pool.submit(on_another_thread).result(timeout=5) is False
