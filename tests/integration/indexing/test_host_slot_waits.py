"""Waiting for a busy host, on the real Redis: in the process, without a thread, handed on
promptly, bounded, and fair between processes (each HostSlots here stands for a worker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from prometheus_client import REGISTRY
from support.in_flight import InFlight
from support.processes import wait_until
from support.slot_state import waiters_here

from shared.errors import HostBusyError
from shared.indexing import host_slots
from shared.indexing.host_slots import KEY_PREFIX, WAITERS_PREFIX, Grant, HostSlots
from shared.jobs.runner import NeedsHost, start_read

HOST = "busy.example"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    for prefix in (KEY_PREFIX, WAITERS_PREFIX):
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)
    client.close()


def worker(client: redis.Redis, limit: int, **options: float) -> HostSlots:
    options = {"keep_idle_s": 0.25, "reuse_for_s": 4.0, "max_wait_s": 10.0} | options
    return HostSlots(client, limit, 64, [], 65.0, **options)  # type: ignore[arg-type]


def waits(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("token_metadata_host_slot_waits_total", {"outcome": outcome})
        or 0.0
    )


def waiting() -> float:
    return REGISTRY.get_sample_value("token_metadata_host_slot_waiting") or 0.0


class Answers:
    """Collects what the slot scheduler hands to waiting requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: list[Grant | Exception] = []

    def __call__(self, answer: Grant | Exception) -> None:
        with self.lock:
            self.got.append(answer)

    def grants(self) -> list[Grant]:
        with self.lock:
            return [a for a in self.got if isinstance(a, Grant)]

    def errors(self) -> list[Exception]:
        with self.lock:
            return [a for a in self.got if isinstance(a, Exception)]


def test_a_slot_given_back_goes_to_the_next_waiter_without_asking_redis(client) -> None:
    slots = worker(client, limit=1)
    answers = Answers()
    granted_before, waiting_before = waits("granted"), waiting()
    first = slots.request(HOST, answers)
    assert first is not None
    assert slots.request(HOST, answers) is None  # at the cap: queued, nothing blocks
    assert waiters_here(slots, HOST) == 1
    assert waiting() == waiting_before + 1  # the worker's gauge
    in_redis = set(client.zrange(KEY_PREFIX + HOST, 0, -1))

    slots.release(first)

    (handed,) = answers.grants()
    assert handed.member == first.member  # the same slot, handed on
    assert set(client.zrange(KEY_PREFIX + HOST, 0, -1)) == in_redis
    assert waiters_here(slots, HOST) == 0
    assert (waiting(), waits("granted")) == (waiting_before, granted_before + 1)


def test_waiters_are_served_first_come_first_served(client) -> None:
    slots = worker(client, limit=1)
    order: list[int] = []
    held = slots.request(HOST, lambda _: None)
    assert held is not None

    def served(n: int, grant: Grant | Exception) -> None:
        order.append(n)
        assert isinstance(grant, Grant)
        slots.release(grant)

    for n in range(5):
        assert slots.request(HOST, lambda grant, n=n: served(n, grant)) is None

    slots.release(held)

    assert order == [0, 1, 2, 3, 4]


def test_a_wait_ends_busy_after_its_bound_and_not_before(client) -> None:
    slots = worker(client, limit=1)
    assert slots.request(HOST, lambda _: None) is not None  # never given back
    answers = Answers()
    busy_before = waits("busy")
    asked = time.monotonic()
    assert slots.request(HOST, answers, wait_s=0.3) is None

    wait_until(lambda: answers.errors(), 5, "the wait to end")
    waited = time.monotonic() - asked
    (error,) = answers.errors()
    assert isinstance(error, HostBusyError)
    assert waited >= 0.3
    assert waiters_here(slots, HOST) == 0
    assert waits("busy") == busy_before + 1


def test_a_caller_that_gave_up_waiting_leaks_no_slot(client, monkeypatch) -> None:
    """Should the poller not answer a blocked caller in time, the caller gives up; a slot
    handed to it later goes back instead of staying held for nobody."""
    monkeypatch.setattr(host_slots, "SYNC_WAIT_GUARD_S", 0.05)
    slots = worker(client, limit=1, keep_idle_s=0.0)
    monkeypatch.setattr(slots, "_start_poller", lambda wake=False: None)  # a poller that hangs
    holder = slots.request(HOST, lambda _: None)
    assert holder is not None

    with pytest.raises(HostBusyError):
        slots.wait_for(HOST, 0.05)
    slots.release(holder)  # handed to the caller that gave up: given back at once

    assert waiters_here(slots, HOST) == 0
    assert client.zcard(KEY_PREFIX + HOST) == 0
    assert slots.try_now(HOST) is not None  # the process's count of held slots is right


def test_a_slot_freed_by_another_worker_reaches_a_waiter(client) -> None:
    other, here = worker(client, limit=1, keep_idle_s=0.0), worker(client, limit=1)
    theirs = other.request(HOST, lambda _: None)
    assert theirs is not None
    answers = Answers()
    assert here.request(HOST, answers) is None

    other.release(theirs)  # back to Redis: the other worker has nobody waiting

    wait_until(lambda: answers.grants(), 5, "the freed slot to reach the waiter")
    assert client.zcard(KEY_PREFIX + HOST) == 1


def test_a_host_with_nothing_to_give_is_asked_less_and_less_often(client, monkeypatch) -> None:
    """Hundreds of saturated hosts must not cost Redis a script call each every 20 ms."""
    other, here = worker(client, limit=1), worker(client, limit=1)
    assert other.request(HOST, lambda _: None) is not None  # held for the whole test
    calls: list[float] = []
    acquire = here._acquire

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(time.monotonic())
        return acquire(*args, **kwargs)

    monkeypatch.setattr(here, "_acquire", counted)
    answers = Answers()
    assert here.request(HOST, answers, wait_s=1.5) is None

    wait_until(lambda: answers.errors(), 5, "the wait to end")
    asked_s = calls[-1] - calls[0]
    # Every 20 ms would be about 75 calls; backing off to 200 ms leaves about a dozen.
    assert 3 <= len(calls) <= 20, (len(calls), asked_s)


def test_a_worker_with_a_backlog_shares_the_host_with_another_that_waits(client) -> None:
    """Worker A keeps a host busy with a long queue of its own; worker B starts waiting too.
    Both get served, and together they never exceed the cap."""
    limit = 4
    a, b = worker(client, limit), worker(client, limit)
    pool = ThreadPoolExecutor(16)
    in_flight, served = InFlight(), {"a": 0, "b": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def fetch(slots: HostSlots, name: str, grant: Grant | Exception) -> None:
        if isinstance(grant, Exception):
            return
        with in_flight.one():
            time.sleep(0.005)  # the fetch itself
        with lock:
            served[name] += 1
        slots.release(grant)
        if not stop.is_set():  # the backlog goes on
            ask(slots, name)

    def ask(slots: HostSlots, name: str) -> None:
        def on_grant(grant: Grant | Exception) -> None:
            pool.submit(fetch, slots, name, grant)

        grant = slots.request(HOST, on_grant)
        if grant is not None:
            on_grant(grant)

    for _ in range(3 * limit):
        ask(a, "a")
    wait_until(lambda: served["a"] >= 50, 10, "worker A to be under way")
    for _ in range(3 * limit):
        ask(b, "b")
    b_started = served["b"]
    wait_until(lambda: served["b"] - b_started >= 100, 20, "worker B to get its share")
    stop.set()
    pool.shutdown(wait=True)

    assert 1 <= in_flight.peak <= limit


def test_a_read_waiting_for_its_host_holds_no_fetch_thread(client) -> None:
    """One fetch thread: a read whose host is busy waits without it, so a read of another
    host finishes first; the waiting one runs once the slot is free."""
    slots = worker(client, limit=1)
    pool = ThreadPoolExecutor(1)
    gate = threading.Event()
    finished: list[str] = []

    def read(item: str) -> str | NeedsHost[str]:
        host, name = item.split("/")

        def rest() -> str:
            if name == "blocking":
                gate.wait(10)
            finished.append(name)
            return name

        return NeedsHost(slots, host, rest)

    holder = slots.request("a.example", lambda _: None)  # a.example is at its cap
    assert holder is not None
    waiting = start_read(pool, read, "a.example/waiting", 30)
    other = start_read(pool, read, "b.example/other", 30)

    assert other.result(timeout=10) == "other"
    assert not waiting.done()
    slots.release(holder)
    assert waiting.result(timeout=10) == "waiting"
    assert finished == ["other", "waiting"]
    pool.shutdown()


def test_a_read_that_waits_past_its_bound_ends_busy(client) -> None:
    slots = worker(client, limit=1, max_wait_s=0.2)
    pool = ThreadPoolExecutor(2)
    assert slots.request(HOST, lambda _: None) is not None

    future = start_read(pool, lambda _: NeedsHost(slots, HOST, lambda: "never"), None, 30)

    with pytest.raises(HostBusyError):
        future.result(timeout=10)
    pool.shutdown()
