"""The change stream's events and filters (docs/change-feed.md#stream)."""

from __future__ import annotations

import orjson

from api.stream.sse import EVERYTHING, HEARTBEAT, Filters, event

ENTRY = {
    "id": 42,
    "at": "2026-12-03T06:00:00+00:00",
    "kind": "metadata_updated",
    "contract_id": "SP1.apes",
    "token_id": "7",
    "block_height": None,
    "details": {"document_changed": True, "note": "two\nlines"},
}


def test_an_entry_is_one_event_its_id_and_one_data_line_of_json() -> None:
    frame = event(ENTRY)
    assert frame.endswith(b"\n\n")
    lines = frame[:-2].split(b"\n")
    assert lines[0] == b"id: 42"
    assert len(lines) == 2  # a line break inside the entry is escaped in its JSON
    assert lines[1].startswith(b"data: ")
    assert orjson.loads(lines[1][len(b"data: ") :]) == ENTRY


def test_a_heartbeat_is_a_comment_that_clients_ignore() -> None:
    assert HEARTBEAT == b": heartbeat\n\n"


def test_filters_let_through_their_contracts_and_kinds_only() -> None:
    assert EVERYTHING.matches(ENTRY)
    assert Filters.of(["SP1.apes", "SP2.coin"], None).matches(ENTRY)
    assert not Filters.of(["SP2.coin"], None).matches(ENTRY)
    assert Filters.of(None, ["metadata_updated"]).matches(ENTRY)
    assert not Filters.of(["SP1.apes"], ["token_added", "owner_changed"]).matches(ENTRY)
    assert Filters.of([], []) == EVERYTHING
