"""TokenTurns' refill throttle on fakeredis: one refill per interval across processes, spaced
further when the last refill's query was slow; and the order of a refill's dispatch (record in
Redis, commit, send, forget the record).

The database is stubbed at its smallest seams: `ctx.sessions` makes sessions that only note
their commit (the real `session_scope` runs on them), and the two job-table queries
`due_token_jobs_in_turns` and `mark_queued` are monkeypatched in `shared.jobs.turns`. The
queries themselves and a refill on Postgres are tested in
tests/integration/jobs/test_token_turns.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
import redis
from sqlalchemy.exc import OperationalError

from shared.config import Settings
from shared.jobs import turns
from shared.jobs.recovery import IN_FLIGHT_KEY
from shared.jobs.runner import JobContext
from shared.jobs.turns import (
    DISPATCH_LIMIT,
    FIRST_HELPING,
    REFILL_EVERY_S,
    REFILL_KEY,
    REFILL_SPACING,
    TokenTurns,
)
from shared.queues import JobMessage


class Session:
    """A session that only notes its commit, and what Redis held at that moment."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.in_flight_at_commit: dict[bytes, bytes] | None = None
        self.rolled_back = False

    def commit(self) -> None:
        self.in_flight_at_commit = self.client.hgetall(IN_FLIGHT_KEY)

    def rollback(self) -> None:
        self.rolled_back = True

    def close(self) -> None:
        pass


class Database:
    """The job tables a refill reads and writes: its due jobs and how long the query takes."""

    def __init__(self, client: redis.Redis, clock: Any, due: Sequence[int] = (1, 2, 3)) -> None:
        self.client = client
        self.clock = clock
        self.due = list(due)
        self.query_s = 0.0
        self.sessions: list[Session] = []
        self.queries: list[tuple[int, int]] = []  # (ahead, limit) of each query
        self.turn_held_for_ms: list[int] = []  # how long the refill key lasts, at each query
        self.failure: Exception | None = None

    def session(self) -> Session:
        self.sessions.append(Session(self.client))
        return self.sessions[-1]

    def due_token_jobs_in_turns(self, session: Session, ahead: int, limit: int) -> list[int]:
        if self.failure is not None:
            raise self.failure
        self.queries.append((ahead, limit))
        self.turn_held_for_ms.append(int(self.client.pttl(REFILL_KEY)))
        self.clock.advance(self.query_s)
        return list(self.due)

    def mark_queued(self, session: Session, ids: Sequence[int]) -> list[JobMessage]:
        return [JobMessage(job_id, is_contract=False) for job_id in ids]


class Broker:
    """Collects sent messages, and what Redis and the session held when they were sent."""

    def __init__(self, client: redis.Redis, database: Database) -> None:
        self.client = client
        self.database = database
        self.sent: list[int] = []
        self.in_flight_at_send: list[dict[bytes, bytes]] = []
        self.committed_before_send: list[bool] = []
        self.failure: Exception | None = None

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.in_flight_at_send.append(self.client.hgetall(IN_FLIGHT_KEY))
        session = self.database.sessions[-1]
        self.committed_before_send.append(session.in_flight_at_commit is not None)
        if self.failure is not None:
            raise self.failure
        self.sent += [m.job_id for m in messages]


@pytest.fixture
def database(client, clock, monkeypatch) -> Database:
    database = Database(client, clock)
    monkeypatch.setattr(turns, "due_token_jobs_in_turns", database.due_token_jobs_in_turns)
    monkeypatch.setattr(turns, "mark_queued", database.mark_queued)
    return database


@pytest.fixture
def broker(client, database) -> Broker:
    return Broker(client, database)


@pytest.fixture
def ctx(database, broker) -> JobContext:
    return JobContext(Settings(), database.session, broker)  # type: ignore[arg-type]


def recorded_ids(records: dict[bytes, bytes]) -> list[list[int]]:
    return [json.loads(raw)["ids"] for raw in records.values()]


# --- the throttle


def test_only_one_process_refills_within_the_interval(client, ctx, database, broker) -> None:
    first, second = TokenTurns(ctx, client, ahead=4), TokenTurns(ctx, client, ahead=4)

    assert first.refill() == 3
    assert second.refill() == 0  # another process refilled a moment ago
    assert first.refill() == 0  # so did this one

    assert len(database.queries) == 1
    assert broker.sent == [1, 2, 3]


def test_the_next_refill_may_run_once_the_interval_has_passed(client, clock, ctx) -> None:
    first, second = TokenTurns(ctx, client), TokenTurns(ctx, client)
    assert first.refill() == 3

    clock.advance(REFILL_EVERY_S - 0.001)
    assert second.refill() == 0
    clock.advance(0.002)

    assert second.refill() == 3


def test_refills_are_spaced_at_four_times_the_last_querys_time_but_no_closer_than_the_interval(
    client, clock, ctx, database
) -> None:
    slow_process, other = TokenTurns(ctx, client), TokenTurns(ctx, client)
    database.query_s = 0.25
    assert slow_process.refill() == 3  # its query took 0.25 s
    clock.advance(REFILL_EVERY_S)
    database.query_s = 0.0625
    assert slow_process.refill() == 3  # so it holds the next turn for 4 x 0.25 s
    spacing_s = REFILL_SPACING * 0.25
    assert database.turn_held_for_ms == [REFILL_EVERY_S * 1000, spacing_s * 1000]

    clock.advance(spacing_s - database.query_s - 0.001)  # the turn began before the query
    assert other.refill() == 0
    clock.advance(0.002)
    assert other.refill() == 3

    clock.advance(REFILL_EVERY_S + 0.001)
    assert slow_process.refill() == 3  # its last query was fast: 4 x 0.0625 s < the interval
    assert database.turn_held_for_ms[-1] == REFILL_EVERY_S * 1000


def test_a_refill_that_is_not_our_turn_touches_no_database(client, ctx, database) -> None:
    client.set(REFILL_KEY, "1", px=500)  # another process's turn

    assert TokenTurns(ctx, client).refill() == 0

    assert database.sessions == []


def test_a_refill_asks_for_its_jobs_ahead_per_contract_up_to_the_dispatch_limit(
    client, ctx, database
) -> None:
    TokenTurns(ctx, client, ahead=7).refill()

    assert database.queries == [(7, DISPATCH_LIMIT)]


def test_a_first_helping_ignores_the_throttle_and_leaves_the_turn_to_refills(
    client, ctx, database, broker
) -> None:
    refiller, contract_job = TokenTurns(ctx, client), TokenTurns(ctx, client, ahead=1000)
    assert contract_job.first_helping() == 3
    assert not client.exists(REFILL_KEY)  # it did not take the refills' turn
    assert refiller.refill() == 3

    assert contract_job.first_helping() == 3  # runs within the refill's turn

    assert database.queries[0] == database.queries[2] == (FIRST_HELPING, DISPATCH_LIMIT)
    assert broker.sent == [1, 2, 3] * 3


def test_a_first_helping_is_no_larger_than_the_jobs_ahead(client, ctx, database) -> None:
    TokenTurns(ctx, client, ahead=10).first_helping()

    assert database.queries == [(10, DISPATCH_LIMIT)]


# --- the dispatch


def test_a_refill_records_its_jobs_before_the_commit_and_forgets_them_once_sent(
    client, ctx, database, broker
) -> None:
    assert TokenTurns(ctx, client).refill() == 3

    (session,) = database.sessions
    assert session.in_flight_at_commit is not None
    assert recorded_ids(session.in_flight_at_commit) == [[1, 2, 3]]  # recorded before commit
    assert broker.committed_before_send == [True]
    assert recorded_ids(broker.in_flight_at_send[0]) == [[1, 2, 3]]  # still there at the send
    assert broker.sent == [1, 2, 3]
    assert not client.exists(IN_FLIGHT_KEY)  # forgotten once sent


def test_a_refill_with_no_due_jobs_sends_nothing_and_records_nothing(
    client, ctx, database, broker
) -> None:
    database.due = []

    assert TokenTurns(ctx, client).refill() == 0

    assert broker.sent == []
    assert broker.in_flight_at_send == [{}]


def test_a_send_that_fails_leaves_the_record_for_recovery(
    client, ctx, database, broker, caplog
) -> None:
    broker.failure = redis.ConnectionError("broker away")

    assert TokenTurns(ctx, client).refill() == 0  # an outage: logged, not raised

    assert recorded_ids(client.hgetall(IN_FLIGHT_KEY)) == [[1, 2, 3]]
    assert "could not dispatch token jobs" in caplog.text


def test_a_database_outage_during_a_refill_is_logged_and_counts_no_jobs(
    client, ctx, database, broker, caplog
) -> None:
    database.failure = OperationalError("SELECT", {}, Exception("database away"))

    assert TokenTurns(ctx, client).refill() == 0

    assert database.sessions[-1].rolled_back
    assert broker.sent == []
    assert not client.exists(IN_FLIGHT_KEY)
    assert "could not dispatch token jobs" in caplog.text


def test_a_redis_outage_at_the_throttle_is_logged_and_counts_no_jobs(
    client, ctx, database, monkeypatch, caplog
) -> None:
    def down(*args: object, **kwargs: object) -> object:
        raise redis.ConnectionError("Redis away")

    monkeypatch.setattr(client, "set", down)

    assert TokenTurns(ctx, client).refill() == 0

    assert database.sessions == []
    assert "could not dispatch token jobs" in caplog.text
