"""What the operator dashboard reads (shared/reads/dashboard.py and its parts), against a
seeded database and the run's Redis DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import func, insert, update
from support.broker import emptied
from support.builders import add_contract, add_token

from shared.db import session_scope
from shared.errors import InvalidReason
from shared.host_slot_keys import KEY_PREFIX, WAITERS_PREFIX
from shared.models import JobStatus, RateLimitedHost, Sip, SmartContract, Token
from shared.queues import TOKENS_QUEUE, WORKER_QUEUES
from shared.reads.backfill import backfill_progress
from shared.reads.dashboard import read_dashboard
from shared.reads.failures import read_failures
from shared.reads.host_slots import read_busy_hosts
from shared.reads.queue_lengths import queue_keys, read_queue_lengths
from shared.reads.rate_limited_hosts import read_rate_limited_hosts
from shared.reads.throughput import fetch_throughput

METADATA_HTTP_ERROR = InvalidReason.METADATA_HTTP_ERROR.value


def test_throughput_counts_tokens_fetched_per_minute_with_zeros(sessions) -> None:
    with session_scope(sessions) as s:
        contract = add_contract(s)
        ages_min = [0, 0, 0, 5, 5, 59, 61, 120]
        for number, age in enumerate(ages_min, start=1):
            token = add_token(s, contract, number)
            s.execute(
                update(Token)
                .where(Token.id == token.id)
                .values(updated_at=func.date_trunc("minute", func.now()) - timedelta(minutes=age))
            )
        add_token(s, contract, 99, processed=False)  # created now, never fetched
    with session_scope(sessions) as s:
        figures = fetch_throughput(s)
    counts = [minute.tokens for minute in figures.minutes]
    assert len(counts) == 60
    assert counts[-1] == 3  # the current minute
    assert counts[-6] == 2
    assert counts[0] == 1  # 59 minutes ago
    assert figures.total == 6
    assert figures.minutes[-1].at - figures.minutes[0].at == timedelta(minutes=59)


def test_failures_by_reason_and_by_host_are_bounded(sessions) -> None:
    with session_scope(sessions) as s:
        contract = add_contract(s)
        uris = ["https://a.example/1", "https://A.example:8443/2", "ipfs://Qm/3", None]
        for number, uri in enumerate(uris, start=1):
            add_token(
                s,
                contract,
                number,
                job_status=JobStatus.INVALID,
                invalid_reason=METADATA_HTTP_ERROR,
                uri=uri,
            )
        add_token(s, contract, 10, job_status=JobStatus.FAILED, uri="http://u:p@b.example/x")
        add_token(s, contract, 11, job_status=JobStatus.DONE, uri="https://ok.example/")
        add_contract(s, job_status=JobStatus.INVALID, invalid_reason=109)
    with session_scope(sessions) as s:
        failures = read_failures(s)
        top_one = read_failures(s, top=1)
    assert failures.total == 6
    reasons = [(r.status, r.code, r.jobs) for r in failures.by_reason]
    assert reasons == [
        ("invalid", METADATA_HTTP_ERROR, 4),
        ("failed", None, 1),
        ("invalid", 109, 1),
    ]
    assert "responded with an error" in failures.by_reason[0].message
    hosts = {h.host: h.jobs for h in failures.by_host}
    assert hosts == {"a.example": 2, "ipfs": 1, "(no uri)": 1, "b.example": 1}
    assert [(h.host, h.jobs) for h in top_one.by_host] == [("a.example", 2)]
    assert len(top_one.by_reason) == 1


def test_rate_limited_hosts_are_the_ones_not_yet_due(sessions) -> None:
    now = datetime.now(UTC)
    with session_scope(sessions) as s:
        s.execute(
            insert(RateLimitedHost),
            [
                {"hostname": "slow.example", "retry_after": now + timedelta(seconds=90)},
                {"hostname": "later.example", "retry_after": now + timedelta(seconds=600)},
                {"hostname": "done.example", "retry_after": now - timedelta(seconds=1)},
            ],
        )
    with session_scope(sessions) as s:
        limited = read_rate_limited_hosts(s)
    assert limited.total == 2
    assert [h.hostname for h in limited.hosts] == ["later.example", "slow.example"]
    assert 80 < limited.hosts[1].seconds_left <= 90


def test_backfill_shows_contracts_with_waiting_work_most_waiting_first(sessions) -> None:
    with session_scope(sessions) as s:
        small = add_contract(s)
        add_token(s, small, 1, job_status=JobStatus.PENDING)
        add_token(s, small, 2, job_status=JobStatus.DONE)
        big = add_contract(s)
        for number in range(1, 4):
            add_token(s, big, number, job_status=JobStatus.QUEUED)
        enumerating = add_contract(s, sip=Sip.SIP_013, job_status=JobStatus.PENDING)
        finished = add_contract(s)
        add_token(s, finished, 1)
        s.execute(update(SmartContract).where(SmartContract.id == big.id).values(token_count=3))
    with session_scope(sessions) as s:
        contracts = backfill_progress(s)
    assert [c.principal for c in contracts] == [
        big.principal,
        small.principal,
        enumerating.principal,
    ]
    assert (contracts[0].total, contracts[0].finished, contracts[0].token_count) == (3, 0, 3)
    assert (contracts[1].total, contracts[1].finished) == (2, 1)
    assert contracts[2].seconds_left is None


@pytest.fixture
def broker(redis_url: str):
    with emptied(redis_url, *(key for q in WORKER_QUEUES for key in queue_keys(q))) as client:
        yield client


def test_queue_lengths_add_up_each_queue_s_priority_lists(broker) -> None:
    high, low = queue_keys(TOKENS_QUEUE)[0], queue_keys(TOKENS_QUEUE)[-1]
    broker.rpush(high, "a", "b")
    broker.rpush(low, "c")
    lengths = read_queue_lengths(broker)
    assert lengths[TOKENS_QUEUE] == 3
    assert set(lengths) == set(WORKER_QUEUES)


def test_busy_hosts_count_unexpired_slots_and_waiting_processes(redis_url: str) -> None:
    hosts = ("busy.example", "waiting.example", "stale.example")
    keys = [prefix + host for host in hosts for prefix in (KEY_PREFIX, WAITERS_PREFIX)]
    with emptied(redis_url, *keys) as client:
        seconds, _ = client.time()
        later, earlier = seconds + 60, seconds - 60
        client.zadd(KEY_PREFIX + "busy.example", {"a": later, "b": later, "c": earlier})
        client.zadd(KEY_PREFIX + "waiting.example", {"a": later})
        client.zadd(WAITERS_PREFIX + "waiting.example", {"p1": later, "p2": later})
        client.zadd(KEY_PREFIX + "stale.example", {"a": earlier})
        busy = [(h.host, h.slots_held, h.processes_waiting) for h in read_busy_hosts(client)]
        top_one = read_busy_hosts(client, top=1)
    assert busy == [("busy.example", 2, 0), ("waiting.example", 1, 2)]
    assert [h.host for h in top_one] == ["busy.example"]


def test_the_dashboard_reads_everything_and_survives_redis_being_away(sessions, broker) -> None:
    with session_scope(sessions) as s:
        contract = add_contract(s)
        add_token(s, contract, 1, job_status=JobStatus.PENDING)
        add_token(s, contract, 2, job_status=JobStatus.FAILED)
    unreachable = redis.Redis(port=1, socket_connect_timeout=1)  # nothing listens on port 1
    with session_scope(sessions) as s:
        up = read_dashboard(s, broker)
        down = read_dashboard(s, unreachable)
    assert up.queues.broker is not None
    assert up.queues.token_jobs == {
        "pending": 1,
        "queued": 0,
        "done": 0,
        "failed": 1,
        "invalid": 0,
    }
    assert up.queues.contract_jobs["done"] == 1
    assert [c.principal for c in up.contracts] == [contract.principal]
    assert up.failures.total == 1
    assert up.host_slots.busy is not None
    assert down.host_slots.busy is None
    assert down.host_slots.error is not None
    assert down.queues.broker is None
    assert down.queues.broker_error is not None
    assert "ConnectionError" in down.queues.broker_error
