"""The reaper's Redis side on fakeredis: a dispatch's in-flight record (written before the
commit, removed after the send), which records `recover_interrupted_dispatches` finds stale,
`forget_dispatches`, and the broker marker that notices Redis came back empty.

`recover_interrupted_dispatches` gets a session stub that notes the UPDATE it is given and
answers with a row count: which jobs that UPDATE really sends back to pending (unclaimed
queued ones only) is Postgres's part, tested in tests/integration/jobs/test_recovery.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from support.redis_doubles import Unreachable

from shared.jobs.recovery import (
    BROKER_MARKER_KEY,
    IN_FLIGHT_GRACE_S,
    IN_FLIGHT_KEY,
    broker_lost_its_data,
    forget_dispatches,
    recover_interrupted_dispatches,
    sending,
)


def records(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.hgetall(IN_FLIGHT_KEY).values()]


class Session:
    """Notes the statements it is asked to run; each reports `rowcount` rows changed."""

    def __init__(self, rowcount: int = 0) -> None:
        self.rowcount = rowcount
        self.statements: list[Any] = []

    def execute(self, statement: Any) -> Any:
        self.statements.append(statement)
        return type("Result", (), {"rowcount": self.rowcount})()

    def job_ids(self) -> list[list[int]]:
        """The job ids each statement was limited to (its `ids` list, bound comma-joined)."""
        ids = []
        for statement in self.statements:
            joined = statement.compile().params.get("ids")
            if joined is not None:
                ids.append(sorted(int(i) for i in joined.split(",")))
        return ids


def recover(session: object, client: redis.Redis, **options: float) -> tuple[int, list[Any]]:
    """`recover_interrupted_dispatches` with a stub (or no) session."""
    return recover_interrupted_dispatches(session, client, **options)  # type: ignore[arg-type]


# --- the in-flight record of a dispatch


def test_a_dispatch_is_recorded_while_it_sends_and_forgotten_after(client, clock) -> None:
    with sending(client, [3, 1, 2]):
        assert records(client) == [{"at": clock.wall, "ids": [3, 1, 2]}]

    assert not client.exists(IN_FLIGHT_KEY)


def test_dispatches_at_the_same_time_keep_records_of_their_own(client, clock) -> None:
    with sending(client, [1]):
        with sending(client, [2]):
            assert sorted(r["ids"] for r in records(client)) == [[1], [2]]

        assert records(client) == [{"at": clock.wall, "ids": [1]}]  # only its own is gone


def test_a_dispatch_of_no_jobs_asks_redis_nothing() -> None:
    with sending(Unreachable(), []):  # type: ignore[arg-type]
        pass


def test_a_dispatch_that_fails_before_its_send_leaves_its_record(client) -> None:
    with pytest.raises(redis.ConnectionError), sending(client, [7, 8]):
        raise redis.ConnectionError("the broker is away")

    assert [r["ids"] for r in records(client)] == [[7, 8]]


# --- recovery of dispatches that never finished


def interrupted(client: redis.Redis, job_ids: list[int]) -> None:
    """A dispatch that committed, then its process died before sending."""
    sending(client, job_ids).__enter__()


def test_a_recent_record_is_left_alone_without_touching_the_database(client, clock) -> None:
    interrupted(client, [1, 2])
    clock.advance(IN_FLIGHT_GRACE_S)  # a dispatch may take this long: too early to tell

    assert recover(Unreachable(), client) == (0, [])

    assert len(records(client)) == 1


def test_a_record_older_than_the_grace_sends_its_jobs_back_to_pending(client, clock) -> None:
    interrupted(client, [4, 5])
    (field,) = client.hkeys(IN_FLIGHT_KEY)
    clock.advance(IN_FLIGHT_GRACE_S + 0.001)
    session = Session(rowcount=1)  # the UPDATE's count: one of them was claimed meanwhile

    recovered, stale = recover(session, client)

    assert (recovered, stale) == (1, [field])
    assert session.job_ids() == [[4, 5]]


def test_only_stale_records_are_recovered_all_in_one_statement(client, clock) -> None:
    interrupted(client, [1, 2])
    interrupted(client, [3])
    old = set(client.hkeys(IN_FLIGHT_KEY))
    clock.advance(30)
    interrupted(client, [9])  # still within its grace
    session = Session(rowcount=3)

    clock.advance(31)
    recovered, stale = recover(session, client)

    assert recovered == 3
    assert set(stale) == old
    assert session.job_ids() == [[1, 2, 3]]


def test_a_shorter_grace_makes_records_stale_sooner(client, clock) -> None:
    interrupted(client, [1])
    clock.advance(5.001)

    recovered, stale = recover(Session(1), client, grace_s=5)

    assert (recovered, len(stale)) == (1, 1)


def test_recovered_records_stay_until_they_are_forgotten(client, clock) -> None:
    interrupted(client, [1])
    interrupted(client, [2])
    clock.advance(IN_FLIGHT_GRACE_S + 1)
    interrupted(client, [3])
    _recovered, stale = recover(Session(2), client)
    assert len(records(client)) == 3  # kept until the recovering session has committed

    forget_dispatches(client, stale)

    assert [r["ids"] for r in records(client)] == [[3]]


def test_forgetting_no_records_asks_redis_nothing() -> None:
    forget_dispatches(Unreachable(), [])  # type: ignore[arg-type]


# --- the broker marker


def test_the_broker_marker_reports_an_empty_redis_once(client) -> None:
    assert broker_lost_its_data(client) is True  # a first start looks the same
    assert client.exists(BROKER_MARKER_KEY)
    assert broker_lost_its_data(client) is False
    assert broker_lost_its_data(client) is False


def test_the_broker_marker_notices_a_flush(client) -> None:
    broker_lost_its_data(client)

    client.flushdb()  # a flush, or a restart without persistence

    assert broker_lost_its_data(client) is True
    assert broker_lost_its_data(client) is False


def test_the_broker_marker_does_not_expire(client, clock) -> None:
    broker_lost_its_data(client)

    clock.advance(365 * 24 * 3600)

    assert client.ttl(BROKER_MARKER_KEY) == -1
    assert broker_lost_its_data(client) is False
