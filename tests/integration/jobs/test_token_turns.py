"""Token jobs go to the broker in turns across contracts, a bounded number ahead per contract,
so a contract enumerated a moment before another never fills the queue ahead of it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
import redis
from sqlalchemy import select, update
from support.broker import emptied
from support.builders import add_contract, add_token

from shared.db import session_scope
from shared.jobs.recovery import IN_FLIGHT_KEY
from shared.jobs.runner import JobContext
from shared.jobs.transitions import due_token_jobs_in_turns, mark_queued
from shared.jobs.turns import FIRST_HELPING, REFILL_KEY, TokenTurns
from shared.models import Job, JobStatus
from shared.queues import JobMessage


def contract_with_jobs(sessions, count: int, processed: bool = False) -> list[int]:  # type: ignore[no-untyped-def]
    """A contract with `count` pending token jobs; their ids in token order."""
    with session_scope(sessions) as s:
        contract = add_contract(s)
        tokens = [
            add_token(s, contract, n, job_status=JobStatus.PENDING, processed=processed)
            for n in range(1, count + 1)
        ]
        rows = s.execute(
            select(Job.token_id, Job.id).where(Job.token_id.in_([t.id for t in tokens]))
        )
        by_token = {token_id: job_id for token_id, job_id in rows}
        return [by_token[t.id] for t in tokens]


def test_due_token_jobs_come_one_contract_after_another_in_turns(sessions) -> None:
    a, b, c = (contract_with_jobs(sessions, n) for n in (4, 2, 1))
    with session_scope(sessions) as s:
        order = due_token_jobs_in_turns(s, ahead=100, limit=100)
    assert order == [a[0], b[0], c[0], a[1], b[1], a[2], a[3]]


def test_jobs_already_waiting_on_the_broker_count_against_a_contracts_turns(sessions) -> None:
    a, b = contract_with_jobs(sessions, 5), contract_with_jobs(sessions, 5)
    with session_scope(sessions) as s:
        mark_queued(s, a[:2])  # two of a's are waiting for a worker already
    with session_scope(sessions) as s:
        order = due_token_jobs_in_turns(s, ahead=3, limit=100)
    assert order == [a[2], b[0], b[1], b[2]]


def test_claimed_jobs_no_longer_count_as_waiting(sessions) -> None:
    (a,) = [contract_with_jobs(sessions, 3)]
    with session_scope(sessions) as s:
        mark_queued(s, a[:1])
        s.execute(update(Job).where(Job.id == a[0]).values(locked_until=Job.created_at))
    with session_scope(sessions) as s:
        assert due_token_jobs_in_turns(s, ahead=2, limit=100) == a[1:3]


def test_tokens_never_processed_come_before_refreshes(sessions) -> None:
    refreshes = contract_with_jobs(sessions, 2, processed=True)
    new = contract_with_jobs(sessions, 2)
    with session_scope(sessions) as s:
        assert due_token_jobs_in_turns(s, ahead=100, limit=100) == [*new, *refreshes]


class Broker:
    def __init__(self) -> None:
        self.sent: list[JobMessage] = []

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.sent.extend(messages)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with emptied(redis_url, REFILL_KEY, IN_FLIGHT_KEY) as client:
        yield client


def test_a_contract_job_hands_out_a_first_helping_of_each_contract(
    settings, sessions, client
) -> None:
    big, small = contract_with_jobs(sessions, FIRST_HELPING + 20), contract_with_jobs(sessions, 3)
    broker = Broker()
    turns = TokenTurns(JobContext(replace(settings), sessions, broker), client)

    assert turns.first_helping() == FIRST_HELPING + 3
    sent = [m.job_id for m in broker.sent]
    assert sent[:6] == [big[0], small[0], big[1], small[1], big[2], small[2]]
    assert set(sent) == {*big[:FIRST_HELPING], *small}
    assert not client.hgetall(IN_FLIGHT_KEY)  # the dispatch record is gone once sent


def test_workers_refill_at_most_once_per_interval(settings, sessions, client) -> None:
    jobs = contract_with_jobs(sessions, 10)
    broker = Broker()
    ctx = JobContext(replace(settings), sessions, broker)
    first, second = TokenTurns(ctx, client, ahead=4), TokenTurns(ctx, client, ahead=4)

    assert first.refill() == 4
    contract_with_jobs(sessions, 2)
    assert second.refill() == 0  # another worker refilled a moment ago
    client.delete(REFILL_KEY)  # the interval is over
    assert second.refill() == 2  # the new contract's; the first is 4 ahead already
    assert [m.job_id for m in broker.sent][:4] == jobs[:4]
    with session_scope(sessions) as s:
        queued = s.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED)).all()
        assert len(queued) == 6
