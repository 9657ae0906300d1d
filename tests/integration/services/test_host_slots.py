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
from support.processes import wait_until

from shared.db import session_scope
from shared.errors import HostBusyError
from shared.models import Job, JobStatus
from shared.services.host_slots import KEY_PREFIX, HostSlots
from shared.services.runner import JobContext, run_job


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
            assert cap.in_use("other.example") == 1
        assert cap.in_use("m.example") == 2
    assert cap.in_use("m.example") == 0
    with cap.slot("m.example"):
        pass


def test_gateways_have_their_own_larger_cap(client) -> None:
    cap = slots(client, limit=1)
    with ExitStack() as held:
        for _ in range(5):
            held.enter_context(cap.slot("GATEWAY.example"))
        with pytest.raises(HostBusyError), cap.slot("gateway.example"):
            pass


def test_a_slot_of_a_dead_holder_expires(client) -> None:
    cap = slots(client, limit=1, hold_s=0.3)
    cap.slot("m.example").__enter__()  # never released, as if the worker died

    def acquired() -> bool:
        try:
            with cap.slot("m.example"):
                return True
        except HostBusyError:
            return False

    wait_until(acquired, 5, "the abandoned slot to expire")


def test_two_holders_in_parallel_never_exceed_the_cap(client) -> None:
    cap = slots(client, limit=3)
    peak, current, lock = [0], [0], threading.Lock()

    def fetch() -> None:
        for _ in range(20):
            try:
                with cap.slot("m.example"):
                    with lock:
                        current[0] += 1
                        peak[0] = max(peak[0], current[0])
                    time.sleep(0.001)  # the fetch itself
                    with lock:
                        current[0] -= 1
            except HostBusyError:
                pass

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= peak[0] <= 3


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
