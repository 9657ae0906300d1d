"""`GET /changes`, the change feed (docs/change-feed.md#the-feed): its answers, paging,
filters, the 410 behind the pruning horizon, the 400s, and its one statement."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from integration.api.conftest import counted_queries
from sqlalchemy import text

from shared.changes import entry, prune_changes, record
from shared.models import ChangeKind
from shared.reads.changes import _ALL_SQL, _BY_CONTRACT_SQL

PREFIX = "/metadata/v1"
APES = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7.apes"
COIN = "SP32XCD69XPS3GKDEXAQ29PJRDSD5AR643GNEEBXZ.fari-token"
OTHER = "SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE.other"


def write(db, *entries: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    with db.begin() as s:
        record(s, entries)


def feed(client, expect: int = 200, path: str = "/changes", **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(PREFIX + path, query_string=params)
    assert response.status_code == expect, response.json
    body: dict[str, Any] = response.json
    return body


@pytest.fixture
def logged(db) -> list[int]:  # type: ignore[no-untyped-def]
    """Six entries of three contracts; their ids."""
    write(
        db,
        entry(ChangeKind.CONTRACT_ADDED, APES, block=(5, "0x05"), details={"token_type": "nft"}),
        entry(ChangeKind.TOKEN_ADDED, APES, 2**128 - 1, block=(5, "0x05")),
        entry(ChangeKind.SUPPLY_CHANGED, COIN, 1, details={"total_supply": "12000"}),
    )
    write(
        db,
        entry(ChangeKind.METADATA_UPDATED, APES, 7, details={"document_changed": True}),
        entry(ChangeKind.OWNER_CHANGED, OTHER, 3, block=(6, "0x06"), details={"from": None}),
        entry(ChangeKind.METADATA_UPDATED, COIN, 1, details={"document_changed": False}),
    )
    with db.begin() as s:
        return list(s.scalars(text("SELECT id FROM changes ORDER BY id")))


def test_entries_come_in_id_order_with_their_fields(client, logged) -> None:
    body = feed(client)
    assert body["next_after"] == logged[-1]
    results = body["results"]
    assert [r["id"] for r in results] == logged
    first, second = results[0], results[1]
    assert set(first) == {"id", "at", "kind", "contract_id", "token_id", "block_height", "details"}
    assert (first["kind"], first["contract_id"], first["token_id"]) == (
        "contract_added",
        APES,
        None,
    )
    assert (first["block_height"], first["details"]) == (5, {"token_type": "nft"})
    assert second["token_id"] == str(2**128 - 1)
    assert results[3]["block_height"] is None
    assert datetime.fromisoformat(first["at"]).tzinfo is not None


def test_pages_follow_next_after_to_the_end(client, logged) -> None:
    first = feed(client, limit=4)
    assert [r["id"] for r in first["results"]] == logged[:4]
    assert first["next_after"] == logged[3]
    rest = feed(client, after=first["next_after"], limit=4)
    assert [r["id"] for r in rest["results"]] == logged[4:]
    end = feed(client, after=rest["next_after"], limit=4)
    assert end == {"results": [], "next_after": logged[-1]}


def test_the_unversioned_prefix_answers_the_same(client, logged) -> None:
    response = client.get("/metadata/changes", query_string={"limit": 2})
    assert response.status_code == 200
    assert response.json == feed(client, limit=2)


def test_contract_and_kind_filters_repeat_and_combine(client, logged) -> None:
    by_contract = feed(client, contract=[COIN, OTHER])
    assert [r["id"] for r in by_contract["results"]] == [logged[2], logged[4], logged[5]]
    by_kind = feed(client, kind=["metadata_updated", "token_added"])
    assert [r["id"] for r in by_kind["results"]] == [logged[1], logged[3], logged[5]]
    both = feed(client, contract=APES, kind="metadata_updated")
    assert [r["id"] for r in both["results"]] == [logged[3]]
    after = feed(client, contract=[APES, APES], after=logged[0], limit=1)
    assert [r["id"] for r in after["results"]] == [logged[1]]
    assert after["next_after"] == logged[1]  # a full page: its last id


def test_a_filtered_page_that_is_not_full_moves_past_what_it_skipped(client, logged) -> None:
    """Entries up to the latest id were all looked at: the next request starts after them,
    so a consumer of a quiet contract does not fall behind the pruning horizon."""
    body = feed(client, contract=OTHER, after=logged[4])
    assert body == {"results": [], "next_after": logged[-1]}
    assert feed(client, after=logged[-1] + 50)["next_after"] == logged[-1] + 50


def test_behind_the_pruning_horizon_is_410_and_says_where_to_resume(client, db, logged) -> None:
    with db.begin() as s:
        s.execute(
            text("UPDATE changes SET at = now() - interval '8 days' WHERE id <= :id"),
            {"id": logged[2]},
        )
        assert prune_changes(s, timedelta(days=7)) == 3
    for after in (0, logged[1]):
        body = feed(client, 410, after=after)
        assert body["error"] == "Changes pruned"
        assert "resynchronise" in body["message"]
        assert (body["pruned_through"], body["latest_id"]) == (logged[2], logged[-1])
    kept = feed(client, after=logged[2])
    assert [r["id"] for r in kept["results"]] == logged[3:]
    assert feed(client, 410, contract=APES)["pruned_through"] == logged[2]


def test_an_empty_log_answers_an_empty_page(client) -> None:
    assert feed(client) == {"results": [], "next_after": 0}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"after": "-1"}, "querystring/after must be >= 0"),
        ({"after": "ten"}, "querystring/after must be integer"),
        ({"after": str(2**63)}, "querystring/after must be <= 9223372036854775807"),
        ({"limit": "0"}, "querystring/limit must be >= 1"),
        ({"limit": "1001"}, "querystring/limit must be <= 1000"),
        ({"contract": "not-a-principal"}, "querystring/contract/0 must match pattern"),
        ({"kind": "token_moved"}, "querystring/kind/0 must be equal to one of"),
        ({"contract": [APES] * 101}, "querystring/contract must NOT have more than 100 items"),
    ],
)
def test_a_malformed_parameter_is_a_400_naming_it(client, params, message) -> None:
    body = feed(client, 400, **params)
    assert body["statusCode"] == 400
    assert body["code"] == "FST_ERR_VALIDATION"
    assert body["message"].startswith(message)


def test_a_page_is_one_statement(client, app, logged) -> None:
    for params in ({}, {"contract": [APES, COIN], "kind": "metadata_updated"}):
        with counted_queries(app) as statements:
            feed(client, **params)
        assert len(statements) == 1


def test_the_route_is_documented_under_its_own_tag(client) -> None:
    document = client.get(f"{PREFIX}/openapi.json").json
    operation = document["paths"][f"{PREFIX}/changes"]["get"]
    assert operation["tags"] == ["Changes"]
    assert set(operation["responses"]) == {"200", "400", "410"}
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"after", "limit", "contract", "kind"}


def plan(settings, sql: str, **params: Any) -> str:  # type: ignore[no-untyped-def]
    values = {"after": 0, "limit": 101, "contracts": None, "kinds": None, **params}
    with psycopg.connect(settings.database_url.replace("+psycopg", "")) as conn:
        conn.execute("SET enable_seqscan = off")
        return "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql, values))


def test_a_page_is_a_range_of_the_id_index_or_of_each_contract_s(settings, logged) -> None:
    assert "changes_pkey" in plan(settings, _ALL_SQL, kinds="metadata_updated")
    by_contract = plan(settings, _BY_CONTRACT_SQL, contracts=f"{APES},{COIN}")
    assert "changes_contract_principal_id_index" in by_contract
    assert "contract_principal = p.principal" in by_contract
