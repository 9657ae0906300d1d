"""The per-host fetch cap on the real Redis: shared by all holders, freed on release or expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace

import pytest
import redis
from sqlalchemy import select
from support.builders import add_contract, add_token
from support.in_flight import InFlight
from support.processes import wait_until
from support.slot_state import slots_in_use

from shared.db import session_scope
from shared.errors import HostBusyError
from shared.indexing.host_slots import KEY_PREFIX, HostSlots
from shared.jobs.runner import JobContext, run_job
from shared.models import Job, JobStatus


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    for key in client.scan_iter(KEY_PREFIX + "*"):
        client.delete(key)
    client.close()


def slots(client: redis.Redis, limit: int = 2, hold_s: float = 30) -> HostSlots:
    return HostSlots(client, limit, 5, ["gateway.example"], hold_s)


def test_a_host_gets_at_most_its_limit_of_slots(client) -> None:
    cap = slots(client, limit=2)
    with ExitStack() as held:
        held.enter_context(cap.slot("m.example"))
        held.enter_context(cap.slot("m.example"))
        with pytest.raises(HostBusyError), cap.slot("m.example"):
            pass
        with cap.slot("other.example"):  # other hosts are not affected
            assert slots_in_use(cap, "other.example") == 1
        assert slots_in_use(cap, "m.example") == 2
    assert slots_in_use(cap, "m.example") == 0
    with cap.slot("m.example"):
        pass


def test_gateways_have_their_own_larger_cap(client) -> None:
    cap = slots(client, limit=1)
    with ExitStack() as held:
        for _ in range(5):
            held.enter_context(cap.slot("GATEWAY.example"))
        with pytest.raises(HostBusyError), cap.slot("gateway.example"):
            pass


def gets_a_slot(cap: HostSlots, host: str = "m.example") -> bool:
    try:
        with cap.slot(host):
            return True
    except HostBusyError:
        return False


def test_a_slot_of_a_dead_holder_expires(client) -> None:
    cap = slots(client, limit=1, hold_s=0.3)
    cap.slot("m.example").__enter__()  # never released, as if the worker died

    wait_until(lambda: gets_a_slot(cap), 5, "the abandoned slot to expire")


def peak_in_flight(caps: list[HostSlots], threads: int = 8, fetches: int = 20) -> int:
    """Fetch from many threads spread over `caps`; the most fetches in flight at once."""
    in_flight = InFlight()

    def fetch(cap: HostSlots) -> None:
        for _ in range(fetches):
            try:
                with cap.slot("m.example"), in_flight.one():
                    time.sleep(0.001)  # the fetch itself
            except HostBusyError:
                pass

    running = [threading.Thread(target=fetch, args=(caps[n % len(caps)],)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return in_flight.peak


def test_two_holders_in_parallel_never_exceed_the_cap(client) -> None:
    assert 1 <= peak_in_flight([slots(client, limit=3)]) <= 3


def test_a_job_waiting_for_its_host_goes_back_to_pending_without_using_a_retry(
    settings, sessions
) -> None:
    with session_scope(sessions) as s:
        token = add_token(s, add_contract(s), job_status=JobStatus.QUEUED, processed=False)
        job_id = s.scalars(select(Job.id).where(Job.token_id == token.id)).one()
    ctx = JobContext(replace(settings), sessions, lambda messages: None)

    def busy(_job: object) -> list[int]:
        raise HostBusyError("m.example", 1.5)

    assert run_job(ctx, job_id, busy).status == JobStatus.PENDING
    with session_scope(sessions) as s:
        row = s.get_one(Job, job_id)
        assert (row.status, row.retry_count, row.locked_until) == (JobStatus.PENDING, 0, None)
        assert 1 <= (row.retry_after - row.updated_at).total_seconds() <= 2


# --- slots kept by a process for its next fetch of the same host


def keeping(client: redis.Redis, limit: int, keep_idle_s: float, reuse_for_s: float) -> HostSlots:
    return HostSlots(client, limit, 5, [], 30, keep_idle_s=keep_idle_s, reuse_for_s=reuse_for_s)


def members(client: redis.Redis, host: str) -> set[bytes]:
    return set(client.zrange(KEY_PREFIX + host, 0, -1))


def test_a_given_back_slot_is_reused_without_taking_another(client) -> None:
    cap = keeping(client, limit=1, keep_idle_s=60, reuse_for_s=60)
    with cap.slot("m.example"):
        first = members(client, "m.example")

    assert slots_in_use(cap, "m.example") == 1  # kept, still counted against the cap
    with cap.slot("m.example"):  # the limit is 1: only the kept slot can serve this
        assert members(client, "m.example") == first


def test_a_kept_slot_does_not_serve_two_fetches_at_once(client) -> None:
    cap = keeping(client, limit=1, keep_idle_s=60, reuse_for_s=60)
    with cap.slot("m.example"):
        pass
    with cap.slot("m.example"), pytest.raises(HostBusyError), cap.slot("m.example"):
        pass


def test_an_idle_kept_slot_goes_back_to_the_other_workers(client) -> None:
    cap = keeping(client, limit=1, keep_idle_s=1.0, reuse_for_s=60)
    other_worker = slots(client, limit=1)
    with cap.slot("m.example"):
        pass
    assert slots_in_use(cap, "m.example") == 1
    assert not gets_a_slot(other_worker)

    wait_until(lambda: gets_a_slot(other_worker), 5, "the idle slot to be given back")


def test_a_slot_too_old_to_outlast_a_fetch_is_not_reused(client) -> None:
    cap = keeping(client, limit=2, keep_idle_s=60, reuse_for_s=60)
    with cap.slot("m.example"):
        first = members(client, "m.example")

    cap.poll(now=time.monotonic() + 61)  # past its reuse window: given back
    assert slots_in_use(cap, "m.example") == 0
    with cap.slot("m.example"):
        assert members(client, "m.example").isdisjoint(first)


def test_workers_keeping_slots_never_exceed_the_cap_together(client) -> None:
    workers = [keeping(client, limit=3, keep_idle_s=0.05, reuse_for_s=60) for _ in range(2)]

    assert 1 <= peak_in_flight(workers, fetches=30) <= 3
    assert len(members(client, "m.example")) <= 3
