"""Waiting for a busy host on fakeredis: callbacks queued in the process, slots handed on (and
renewed when old), the poller's rounds, the waiter registry in Redis, the fair share between
processes and the back-off of hosts with nothing to give. Each HostSlots stands for a worker
process; no poller thread runs, the tests call `poll` at the times they choose. The
real-Redis counterpart is tests/integration/indexing/test_host_slot_waits.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY
from support.redis_doubles import CountedScript, Unreachable
from support.slot_state import slots_in_use, waiters_here

from shared.errors import HostBusyError
from shared.indexing import host_slots
from shared.indexing.host_slots import (
    KEY_PREFIX,
    MAX_ASK_INTERVAL_S,
    POLL_INTERVAL_S,
    WAITER_REFRESH_S,
    WAITER_TTL_S,
    WAITERS_PREFIX,
    Grant,
    HostSlots,
)

HOST = "busy.example"
HOLD_S = 65.0
REUSE_FOR_S = 4.0

Worker = Callable[..., HostSlots]


class Wakes:
    """Records the process asking for its poller thread (none runs in these tests)."""

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def __call__(self, wake: bool = False) -> None:
        self.calls.append(wake)


@pytest.fixture
def worker(client: redis.Redis, clock: object, monkeypatch: pytest.MonkeyPatch) -> Worker:
    def make(limit: int = 1, **options: Any) -> HostSlots:
        options = {"keep_idle_s": 0.0, "reuse_for_s": REUSE_FOR_S, "max_wait_s": 10.0} | options
        slots = HostSlots(client, limit, 64, [], HOLD_S, **options)
        monkeypatch.setattr(slots, "_start_poller", Wakes())
        return slots

    return make


class Answers:
    """Collects what the slot scheduler hands to waiting requests."""

    def __init__(self) -> None:
        self.got: list[Grant | Exception] = []

    def __call__(self, answer: Grant | Exception) -> None:
        self.got.append(answer)

    def grants(self) -> list[Grant]:
        return [a for a in self.got if isinstance(a, Grant)]

    def errors(self) -> list[Exception]:
        return [a for a in self.got if isinstance(a, Exception)]


def take(slots: HostSlots) -> Grant:
    grant = slots.try_now(HOST)
    assert grant is not None, "no slot free"
    return grant


def queue(slots: HostSlots, answers: Answers, wait_s: float | None = None) -> None:
    assert slots.request(HOST, answers, wait_s) is None, "granted at once"


def holds(client: redis.Redis) -> dict[str, float]:
    return {m.decode(): s for m, s in client.zrange(KEY_PREFIX + HOST, 0, -1, withscores=True)}


def waiter_entries(client: redis.Redis) -> dict[str, float]:
    entries = client.zrange(WAITERS_PREFIX + HOST, 0, -1, withscores=True)
    return {m.decode(): s for m, s in entries}


def waits(outcome: str) -> float:
    sample = REGISTRY.get_sample_value("token_metadata_host_slot_waits_total", {"outcome": outcome})
    return sample or 0.0


def waiting() -> float:
    return REGISTRY.get_sample_value("token_metadata_host_slot_waiting") or 0.0


# --- requests and hand-ons within a process


def test_a_request_for_a_free_host_is_granted_at_once_without_the_callback(worker) -> None:
    answers = Answers()

    grant = worker().request(HOST, answers)

    assert grant is not None
    assert answers.got == []


def test_a_request_for_a_full_host_queues_its_callback_and_returns(worker) -> None:
    slots = worker(limit=1)
    take(slots)
    answers, waiting_before = Answers(), waiting()

    queue(slots, answers)
    queue(slots, answers)

    assert answers.got == []
    assert waiters_here(slots, HOST) == 2
    assert waiting() == waiting_before + 2  # the worker's gauge
    assert slots._start_poller.calls == [True]  # the first waiter wakes the poller, once


def test_a_released_slot_goes_to_the_next_waiter_without_asking_redis(
    worker, client, monkeypatch
) -> None:
    slots = worker(limit=1)
    held = take(slots)
    answers = Answers()
    queue(slots, answers)
    in_redis = holds(client)
    granted_before, waiting_before = waits("granted"), waiting()
    for name in ("client", "_acquire", "_renew"):
        monkeypatch.setattr(slots, name, Unreachable())

    slots.release(held)

    (handed,) = answers.grants()
    assert handed.member == held.member  # the same slot, handed on
    assert holds(client) == in_redis  # its hold untouched
    assert waiters_here(slots, HOST) == 0
    assert (waiting(), waits("granted")) == (waiting_before - 1, granted_before + 1)


def test_waiters_are_served_first_come_first_served(worker) -> None:
    slots = worker(limit=1)
    held = take(slots)
    order: list[int] = []

    def served(n: int, grant: Grant | Exception) -> None:
        assert isinstance(grant, Grant)
        order.append(n)
        slots.release(grant)

    for n in range(5):
        assert slots.request(HOST, lambda grant, n=n: served(n, grant)) is None

    slots.release(held)

    assert order == [0, 1, 2, 3, 4]


def test_a_request_never_jumps_the_queue_of_its_process(worker, client) -> None:
    slots, other = worker(limit=1), worker(limit=1)
    theirs = take(other)
    answers = Answers()
    queue(slots, answers)
    other.release(theirs)  # a slot is free in Redis, but a request here waits for it

    assert slots.try_now(HOST) is None
    assert slots.request(HOST, Answers()) is None
    slots.poll()

    assert len(answers.grants()) == 1  # the first waiter got it
    assert waiters_here(slots, HOST) == 1


def test_a_slot_too_old_for_another_fetch_is_renewed_before_it_is_handed_on(
    worker, client, clock
) -> None:
    slots = worker(limit=1)
    held = take(slots)
    answers = Answers()
    queue(slots, answers, wait_s=30)

    clock.advance(REUSE_FOR_S + 1)
    slots.release(held)

    (handed,) = answers.grants()
    assert handed.member == held.member
    assert holds(client) == {held.member: pytest.approx(clock.wall + HOLD_S, abs=1e-3)}
    assert handed.reusable_until == pytest.approx(clock.mono + REUSE_FOR_S, abs=1e-6)


def test_a_waiter_whose_slot_vanished_from_redis_waits_on_for_a_new_one(
    worker, client, clock
) -> None:
    slots = worker(limit=1)
    held = take(slots)
    answers = Answers()
    queue(slots, answers, wait_s=30)
    client.flushdb()  # Redis restarted empty: the slot cannot be renewed

    clock.advance(REUSE_FOR_S + 1)
    slots.release(held)
    assert answers.got == []
    assert waiters_here(slots, HOST) == 1
    slots.poll()

    (granted,) = answers.grants()
    assert granted.member != held.member
    assert set(holds(client)) == {granted.member}


# --- the poller's rounds


def test_a_slot_freed_by_another_process_reaches_a_waiter_on_the_next_poll(worker, client) -> None:
    other, here = worker(limit=1), worker(limit=1)
    theirs = take(other)
    answers = Answers()
    queue(here, answers)

    other.release(theirs)  # back to Redis: the other process has nobody waiting
    here.poll()

    (granted,) = answers.grants()
    assert set(holds(client)) == {granted.member}
    assert waiters_here(here, HOST) == 0


def test_a_poll_asks_redis_only_for_the_slots_its_waiters_need(worker, client) -> None:
    other, here = worker(limit=4), worker(limit=4)
    theirs = [take(other) for _ in range(4)]
    answers = Answers()
    queue(here, answers)
    queue(here, answers)
    for grant in theirs:
        other.release(grant)

    here.poll()

    assert len(answers.grants()) == 2
    assert len(holds(client)) == 2


def test_a_wait_ends_busy_at_its_deadline_and_not_before(worker, clock) -> None:
    slots = worker(limit=1)
    take(slots)  # never given back
    answers, busy_before, waiting_before = Answers(), waits("busy"), waiting()
    queue(slots, answers, wait_s=3.0)

    clock.advance(2.99)
    slots.poll()
    assert answers.got == []
    clock.advance(0.01)
    slots.poll()

    (error,) = answers.errors()
    assert isinstance(error, HostBusyError)
    assert 1.0 <= error.retry_after_s < 2.0  # spread out so deferred tokens do not bunch
    assert waiters_here(slots, HOST) == 0
    assert (waits("busy"), waiting()) == (busy_before + 1, waiting_before)


def test_a_wait_without_its_own_bound_ends_after_max_wait(worker, clock) -> None:
    slots = worker(limit=1, max_wait_s=7.0)
    take(slots)
    answers = Answers()
    queue(slots, answers)

    clock.advance(6.99)
    slots.poll()
    assert answers.got == []
    clock.advance(0.01)
    slots.poll()

    assert len(answers.errors()) == 1


def test_a_shorter_wait_queued_behind_a_longer_one_ends_on_time(worker, clock) -> None:
    slots = worker(limit=1)
    take(slots)
    patient, hurried = Answers(), Answers()
    queue(slots, patient, wait_s=10.0)
    queue(slots, hurried, wait_s=1.0)

    clock.advance(1.0)
    slots.poll()

    assert len(hurried.errors()) == 1
    assert patient.got == []
    assert waiters_here(slots, HOST) == 1


def test_a_release_ends_overdue_waits_before_handing_the_slot_on(worker, clock) -> None:
    slots = worker(limit=1)
    held = take(slots)
    overdue, next_in_line = Answers(), Answers()
    queue(slots, overdue, wait_s=1.0)
    queue(slots, next_in_line, wait_s=10.0)

    clock.advance(1.0)
    slots.release(held)

    assert len(overdue.errors()) == 1
    assert [g.member for g in next_in_line.grants()] == [held.member]


def test_a_host_with_nothing_to_give_is_asked_less_and_less_often(
    worker, clock, monkeypatch
) -> None:
    """Hundreds of saturated hosts must not cost Redis a script call each every 20 ms."""
    other, here = worker(limit=1), worker(limit=1)
    take(other)  # held throughout
    queue(here, Answers(), wait_s=100)
    script = CountedScript(here, monkeypatch)

    for _ in range(2000):  # a poll every millisecond for two seconds
        clock.advance(0.001)
        here.poll()

    gaps = [round(b - a, 3) for a, b in zip(script.at, script.at[1:], strict=False)]
    doubling = [POLL_INTERVAL_S * 2**n for n in range(4)]  # 20, 40, 80, 160 ms
    assert gaps[:4] == pytest.approx(doubling, abs=0.0011)
    assert gaps[4:] == pytest.approx([MAX_ASK_INTERVAL_S] * len(gaps[4:]), abs=0.0011)
    assert len(script.at) <= 15  # rather than 2000


def test_a_new_waiter_resets_the_back_off(worker, clock, monkeypatch) -> None:
    other, here = worker(limit=1), worker(limit=1)
    take(other)
    queue(here, Answers(), wait_s=0.91)
    script = CountedScript(here, monkeypatch)
    while waiters_here(here, HOST):  # backs off to asking every 200 ms; then the wait ends
        clock.advance(0.001)
        here.poll()
    last_asked = script.at[-1]
    assert clock.mono + 0.001 - last_asked < MAX_ASK_INTERVAL_S  # backed off: not due yet

    queue(here, Answers(), wait_s=10.0)  # asks at once, then leaves it to the poller
    clock.advance(0.001)
    here.poll()

    assert script.at[-2:] == pytest.approx([clock.mono - 0.001, clock.mono], abs=1e-6)


def test_a_slot_granted_by_redis_resets_the_back_off(worker, clock, monkeypatch) -> None:
    other, here = worker(limit=2), worker(limit=2)
    theirs = [take(other), take(other)]
    answers = Answers()
    queue(here, answers, wait_s=100)
    queue(here, answers, wait_s=100)
    for _ in range(1000):  # backed off to asking every 200 ms by now
        clock.advance(0.001)
        here.poll()
    other.release(theirs[0])
    script = CountedScript(here, monkeypatch)
    while not answers.grants():
        clock.advance(0.001)
        here.poll()

    for _ in range(100):  # the other waiter's slot: asked for as if it had just come
        clock.advance(0.001)
        here.poll()

    gaps = [round(b - a, 3) for a, b in zip(script.at, script.at[1:], strict=False)]
    assert gaps == pytest.approx([0.001, POLL_INTERVAL_S, 2 * POLL_INTERVAL_S], abs=0.0011)


# --- the waiter registry in Redis


def test_a_process_whose_request_must_wait_registers_as_a_waiter_of_the_host(
    worker, client, clock
) -> None:
    other, here = worker(limit=1), worker(limit=1)
    take(other)

    queue(here, Answers())

    assert waiter_entries(client) == {
        here.process_id: pytest.approx(clock.wall + WAITER_TTL_S, abs=1e-3)
    }


def test_a_process_granted_a_slot_at_once_does_not_register(worker, client) -> None:
    take(worker())

    assert waiter_entries(client) == {}


def test_a_process_with_no_more_waiters_leaves_the_waiter_set_on_its_next_poll(
    worker, client
) -> None:
    other, here = worker(limit=1), worker(limit=1)
    theirs = take(other)
    answers = Answers()
    queue(here, answers)
    other.release(theirs)
    here.poll()  # served: nobody waits here any more
    assert len(answers.grants()) == 1

    here.poll()

    assert waiter_entries(client) == {}


def test_a_waiting_process_renews_its_entry_even_when_it_asks_for_no_slot(
    worker, client, clock, monkeypatch
) -> None:
    slots = worker(limit=1)
    take(slots)  # at its limit: its waiter needs no slot from Redis, only its turn
    queue(slots, Answers(), wait_s=100)
    slots.poll()
    registered_at = clock.wall
    script = CountedScript(slots, monkeypatch)

    clock.advance(WAITER_REFRESH_S - 0.01)
    slots.poll()
    assert script.at == []
    clock.advance(0.01)
    slots.poll()

    assert len(script.at) == 1
    entry = waiter_entries(client)[slots.process_id]
    assert entry == pytest.approx(registered_at + WAITER_REFRESH_S + WAITER_TTL_S, abs=1e-3)
    assert slots_in_use(slots, HOST) == 1  # renewing took no slot


def test_a_process_that_stopped_polling_stops_counting_as_a_waiter(worker, clock) -> None:
    holder, dead, here = worker(limit=4), worker(limit=4), worker(limit=4)
    theirs = [take(holder) for _ in range(4)]
    queue(dead, Answers(), wait_s=100)  # registered; then its worker dies
    for grant in theirs:
        holder.release(grant)
    mine = [take(here), take(here)]  # its share while another process waits: 4 / 2
    assert here.try_now(HOST) is None

    clock.advance(WAITER_TTL_S - 0.01)
    here.release(mine.pop())
    mine.append(take(here))  # asks Redis: the dead process still counts
    assert here.try_now(HOST) is None
    clock.advance(0.01)
    here.release(mine.pop())
    mine.append(take(here))  # asks Redis: its entry has expired

    mine += [take(here), take(here)]
    assert slots_in_use(here, HOST) == 4


# --- a fair share between processes


def test_a_process_takes_no_more_than_its_share_while_others_wait(worker, client) -> None:
    """The share is the cap divided among the waiting processes, rounded up: 5 / 3 -> 2."""
    holder, b, c, a = (worker(limit=5) for _ in range(4))
    theirs = [take(holder) for _ in range(5)]
    queue(b, Answers())
    queue(c, Answers())
    for grant in theirs:
        holder.release(grant)

    take(a)
    take(a)

    assert a.try_now(HOST) is None
    assert len(holds(client)) == 2  # three slots are free, kept for the waiting processes


def test_a_process_over_its_share_gives_a_slot_back_instead_of_handing_it_on(
    worker, client
) -> None:
    """Without this, a worker with a long queue of its own would keep every slot forever."""
    greedy, other = worker(limit=4), worker(limit=4)
    mine = [take(greedy) for _ in range(4)]
    own_waiter, their_waiter = Answers(), Answers()
    queue(greedy, own_waiter)
    queue(other, their_waiter)  # registers in Redis
    greedy.poll()  # renews its own entry and learns of the other process: its share is 2

    greedy.release(mine.pop())

    assert own_waiter.got == []
    assert len(holds(client)) == 3
    other.poll()
    assert len(their_waiter.grants()) == 1


def test_a_process_within_its_share_hands_a_released_slot_to_its_own_waiter(worker) -> None:
    greedy, other = worker(limit=4), worker(limit=4)
    mine = [take(greedy) for _ in range(4)]
    own_waiter = Answers()
    queue(greedy, own_waiter)
    queue(other, Answers())
    greedy.poll()
    greedy.release(mine.pop())
    greedy.release(mine.pop())  # holds 2: its share

    greedy.release(mine.pop())

    assert len(own_waiter.grants()) == 1


def test_processes_waiting_for_a_host_split_its_freed_slots(worker, client) -> None:
    holder, a, b = (worker(limit=4) for _ in range(3))
    theirs = [take(holder) for _ in range(4)]
    a_answers, b_answers = Answers(), Answers()
    queue(b, b_answers)
    for _ in range(4):
        queue(a, a_answers)  # asking at once told it that b waits too
    for grant in theirs:
        holder.release(grant)

    a.poll()
    b.poll()

    assert (len(a_answers.grants()), len(b_answers.grants())) == (2, 1)
    assert waiters_here(a, HOST) == 2
    assert len(holds(client)) == 3


def test_no_slot_is_kept_idle_while_another_process_waits(worker, client) -> None:
    holder, waiter = worker(limit=1), worker(limit=1)
    keeper = worker(limit=1, keep_idle_s=60.0)
    theirs = take(holder)
    answers = Answers()
    queue(waiter, answers)
    holder.release(theirs)
    mine = take(keeper)  # and it learns that another process waits for the host

    keeper.release(mine)

    assert holds(client) == {}  # back to Redis, not kept idle
    waiter.poll()
    assert len(answers.grants()) == 1


# --- Redis errors


def test_a_redis_error_when_asking_at_once_is_raised_and_reserves_nothing(
    worker, monkeypatch
) -> None:
    slots = worker(limit=1)
    script = slots._acquire

    def down(*args: object, **kwargs: object) -> object:
        raise redis.ConnectionError("Redis is away")

    monkeypatch.setattr(slots, "_acquire", down)
    with pytest.raises(redis.ConnectionError):
        slots.request(HOST, Answers())
    monkeypatch.setattr(slots, "_acquire", script)

    assert waiters_here(slots, HOST) == 0
    take(slots)  # the failed ask left no slot counted as held


def test_a_redis_error_while_polling_keeps_the_waiters_waiting(
    worker, clock, monkeypatch, caplog
) -> None:
    other, here = worker(limit=1), worker(limit=1)
    theirs = take(other)
    answers = Answers()
    queue(here, answers)
    other.release(theirs)
    script = here._acquire

    def down(*args: object, **kwargs: object) -> object:
        raise redis.ConnectionError("Redis is away")

    monkeypatch.setattr(here, "_acquire", down)
    here.poll()
    assert answers.got == []
    assert waiters_here(here, HOST) == 1
    assert "could not ask Redis for slots of busy.example" in caplog.text
    monkeypatch.setattr(here, "_acquire", script)
    clock.advance(POLL_INTERVAL_S)
    here.poll()

    assert len(answers.grants()) == 1


# --- a caller blocking its own thread


def test_a_blocked_caller_gets_the_slot_another_thread_hands_on(worker, monkeypatch) -> None:
    slots = worker(limit=1)
    held = take(slots)
    queued = threading.Event()
    request = slots.request

    def request_then_tell(*args: object, **kwargs: object) -> Grant | None:
        grant = request(*args, **kwargs)  # type: ignore[arg-type]
        queued.set()
        return grant

    monkeypatch.setattr(slots, "request", request_then_tell)
    with ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(slots.wait_for, HOST, 30.0)
        assert queued.wait(5)
        slots.release(held)
        got = blocked.result(timeout=5)

    assert got.member == held.member


def test_wait_for_without_a_wait_is_busy_at_once(worker) -> None:
    slots = worker(limit=1)
    take(slots)

    with pytest.raises(HostBusyError) as busy:
        slots.wait_for(HOST, 0.0)

    assert 1.0 <= busy.value.retry_after_s < 2.0
    assert waiters_here(slots, HOST) == 0


def test_a_caller_that_gave_up_waiting_leaks_no_slot(worker, client, monkeypatch) -> None:
    """Should no answer come in time (here: no poller at all), the caller gives up; a slot
    handed to it later goes back instead of staying held for nobody."""
    monkeypatch.setattr(host_slots, "SYNC_WAIT_GUARD_S", 0.0)
    slots = worker(limit=1)
    held = take(slots)

    with pytest.raises(HostBusyError):
        slots.wait_for(HOST, 0.001)
    slots.release(held)  # handed to the caller that gave up: given back at once

    assert waiters_here(slots, HOST) == 0
    assert holds(client) == {}
    take(slots)  # the process's count of held slots is right
