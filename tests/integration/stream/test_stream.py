"""`GET /changes/stream`, the live stream of the change log (docs/change-feed.md#stream), on
the real Postgres: events in order with their ids, resuming without a gap or a duplicate while
writers commit, filters, the 410 and 400s, heartbeats, the safety poll behind a lost
notification, and the subscribers gauge."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import requests
from psycopg.rows import namedtuple_row
from sqlalchemy import text
from support.changes import last_id, logged
from support.processes import wait_until
from support.stream import StreamServer, stream_server, subscribed

from api.schemas.changes import pruned_body
from shared.changes import entry, prune_changes, record
from shared.db import session_scope
from shared.models import ChangeKind
from shared.reads.changes import ChangesPruned, read_changes

APES = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7.apes"
COIN = "SP32XCD69XPS3GKDEXAQ29PJRDSD5AR643GNEEBXZ.fari-token"
OTHER = "SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE.other"
ADDED, UPDATED, OWNER = (
    ChangeKind.TOKEN_ADDED,
    ChangeKind.METADATA_UPDATED,
    ChangeKind.OWNER_CHANGED,
)
# Long enough that an entry arriving in a test was brought by its notification, not a poll.
NO_POLL = 600.0


@pytest.fixture
def stream(settings) -> Iterator[StreamServer]:  # type: ignore[no-untyped-def]
    with stream_server(replace(settings, stream_poll_s=NO_POLL)) as server:
        yield server


def write(sessions, *entries: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as s:
        record(s, entries)


class Reads:
    """GET /changes's reads, as the Flask route runs them (a `RowSource`)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url.replace("+psycopg", "")

    def all(self, sql: str, params: Any) -> list[Any]:
        with psycopg.connect(self.url) as conn, conn.cursor(row_factory=namedtuple_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall()


def test_entries_written_after_connecting_come_in_order_as_get_changes_serves_them(
    stream, sessions, settings
) -> None:
    write(sessions, entry(ADDED, APES, 1, block=(5, "0x05"), details={"token_type": "nft"}))
    with subscribed(stream.url()) as events:
        write(sessions, entry(ADDED, APES, 2**128 - 1), entry(ChangeKind.CONTRACT_ADDED, COIN))
        write(sessions, entry(UPDATED, APES, 7, details={"document_changed": True}))
        received = events.events(3)
    first = logged(sessions)[0].id
    page = read_changes(Reads(settings.database_url), first, 100)
    assert not isinstance(page, ChangesPruned)
    assert [e.id for e in received] == [e["id"] for e in page.results]  # not the one before
    assert [e.data for e in received] == page.results
    assert received[0].data["token_id"] == str(2**128 - 1)


def test_the_unversioned_path_streams_too(stream, sessions) -> None:
    with subscribed(stream.url("/metadata/changes/stream")) as events:
        write(sessions, entry(ADDED, APES, 1))
        assert events.events(1)[0].data["kind"] == "token_added"


def test_resuming_by_after_or_last_event_id_misses_nothing_while_writers_commit(
    stream, sessions
) -> None:
    """Two pages of catch-up (more than 1,000 entries), then the live fan-out, while
    transactions commit all along: every id after the resumed one, once, in order."""
    write(sessions, *(entry(ADDED, APES, n) for n in range(1, 1_501)))
    resume_at = logged(sessions)[99].id
    done = threading.Event()

    def writer() -> None:
        for n in range(40):
            write(sessions, entry(OWNER, COIN, n, details={"from": None, "to": "SP1"}))
        write(sessions, entry(ChangeKind.TOKEN_BURNED, OTHER, 1))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    by_after = subscribed(stream.url(), {"after": resume_at})
    by_header = subscribed(stream.url(), {"after": 0}, {"Last-Event-ID": str(resume_at)})
    with by_after as a, by_header as b:
        thread.join(60)
        assert done.is_set()
        expected = [e.id for e in logged(sessions, after=resume_at)]
        assert len(expected) == 1_400 + 41
        assert [e.id for e in a.events(len(expected))] == expected
        assert [e.id for e in b.events(len(expected))] == expected
        write(sessions, entry(ADDED, APES, 9_999))  # the next event is the next entry
        assert a.events(1)[0].id == last_id(sessions)


def test_contract_and_kind_filters_repeat_and_combine(stream, sessions) -> None:
    params = {"contract": [APES, COIN], "kind": ["token_added", "metadata_updated"]}
    with subscribed(stream.url(), params) as events:
        write(
            sessions,
            entry(ADDED, APES, 1),
            entry(ADDED, OTHER, 1),
            entry(OWNER, COIN, 1),
            entry(UPDATED, COIN, 1),
        )
        write(sessions, entry(ChangeKind.TOKEN_BURNED, APES, 1), entry(UPDATED, APES, 2))
        received = events.events(3)
    assert [(e.data["kind"], e.data["contract_id"]) for e in received] == [
        ("token_added", APES),
        ("metadata_updated", COIN),
        ("metadata_updated", APES),
    ]


def test_behind_the_pruning_horizon_is_the_410_of_get_changes(stream, sessions) -> None:
    write(sessions, entry(ADDED, APES, 1), entry(ADDED, APES, 2), entry(ADDED, APES, 3))
    ids = [e.id for e in logged(sessions)]
    with session_scope(sessions) as s:
        s.execute(
            text("UPDATE changes SET at = now() - interval '8 days' WHERE id <= :id"),
            {"id": ids[1]},
        )
        assert prune_changes(s, timedelta(days=7)) == 2
    for headers, params in (({}, {"after": 0}), ({"Last-Event-ID": str(ids[0])}, {})):
        response = requests.get(stream.url(), params=params, headers=headers, timeout=10)
        assert response.status_code == 410
        assert response.json() == pruned_body(ChangesPruned(ids[1], ids[2]))
    with subscribed(stream.url(), {"after": ids[1]}) as events:
        assert [e.id for e in events.events(1)] == [ids[2]]


@pytest.mark.parametrize(
    ("params", "headers", "message"),
    [
        ({"after": "-1"}, {}, "querystring/after must be >= 0"),
        ({"after": "ten"}, {}, "querystring/after must be integer"),
        ({"contract": "not-a-principal"}, {}, "querystring/contract/0 must match pattern"),
        ({"kind": "token_moved"}, {}, "querystring/kind/0 must be equal to one of"),
        ({}, {"Last-Event-ID": "abc"}, "headers/Last-Event-ID must be integer"),
    ],
)
def test_a_malformed_parameter_is_get_changes_400_naming_it(
    stream, params, headers, message
) -> None:
    response = requests.get(stream.url(), params=params, headers=headers, timeout=10)
    assert response.status_code == 400
    body = response.json()
    assert (body["statusCode"], body["code"]) == (400, "FST_ERR_VALIDATION")
    assert body["message"].startswith(message)


def test_an_idle_stream_gets_a_heartbeat_comment(settings) -> None:
    with (
        stream_server(replace(settings, stream_heartbeat_s=0.2, stream_poll_s=NO_POLL)) as server,
        subscribed(server.url()) as events,
    ):
        assert events.comment() == ": heartbeat"
        assert events.comment() == ": heartbeat"


def test_an_entry_whose_notification_was_lost_comes_with_the_safety_poll(
    settings, sessions
) -> None:
    with (
        stream_server(replace(settings, stream_poll_s=0.3)) as server,
        subscribed(server.url()) as events,
    ):
        with session_scope(sessions) as s:  # written without `record`: no notification
            s.execute(
                text(
                    "INSERT INTO changes (kind, contract_principal, token_number, details) "
                    "VALUES ('token_added', :c, 4, '{}')"
                ),
                {"c": APES},
            )
        received = events.events(1)
    assert (received[0].id, received[0].data["token_id"]) == (last_id(sessions), "4")


def test_the_subscribers_gauge_counts_open_streams(stream) -> None:
    def gauge() -> float:
        metrics = requests.get(stream.base + "/metrics", timeout=10).text
        line = next(
            line
            for line in metrics.splitlines()
            if line.startswith("token_metadata_stream_subscribers ")
        )
        return float(line.split()[1])

    assert gauge() == 0
    with subscribed(stream.url()):
        with subscribed(stream.url(), {"kind": "token_added"}):
            assert gauge() == 2
        wait_until(lambda: gauge() == 1, 10, "the gauge to count the closed stream out")
    wait_until(lambda: gauge() == 0, 10, "the gauge to reach 0")
    assert requests.get(stream.base + "/healthz", timeout=10).json()["status"] == "ok"
