"""Lists and rows bound as single parameters come back from Postgres exactly as sent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Integer, Numeric, Text, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token

from shared.db import session_scope
from shared.models import Job, JobStatus, Token
from shared.sql_params import ElementType, Scalar, any_of, array_of, joined, json_rows

UINT128_MAX = 2**128 - 1


def round_trip(
    sessions: sessionmaker[Session], values: list[Scalar] | None, element_type: ElementType
) -> list[object] | None:
    statement = text(f"SELECT {array_of(':values', element_type)}")
    with session_scope(sessions) as s:
        return s.scalar(statement, {"values": joined(values)})


@pytest.mark.parametrize(
    ("values", "element_type", "expected"),
    [
        ([3, 1, 2, 1], "integer", [3, 1, 2, 1]),
        ([2**63 - 1, -(2**63)], "bigint", [2**63 - 1, -(2**63)]),
        (
            [UINT128_MAX, -UINT128_MAX, 0, Decimal("-1.25")],
            "numeric",
            [UINT128_MAX, -UINT128_MAX, 0, Decimal("-1.25")],
        ),
        (
            ["SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.usda-token", "0x00ff" * 16],
            "text",
            ["SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.usda-token", "0x00ff" * 16],
        ),
        ([], "integer", []),  # an empty array, not NULL
        ([], "text", []),
    ],
)
def test_a_joined_list_round_trips(
    sessions, values: list[Scalar], element_type: ElementType, expected: list[object]
) -> None:
    assert round_trip(sessions, values, element_type) == expected


def test_none_binds_null_so_is_null_checks_still_work(sessions) -> None:
    assert round_trip(sessions, None, "numeric") is None
    statement = text(f"SELECT {array_of(':values', 'numeric')} IS NULL")
    with session_scope(sessions) as s:
        assert s.scalar(statement, {"values": joined(None)}) is True
        assert s.scalar(statement, {"values": joined([])}) is False


def test_numbers_keep_their_order_in_an_unnest_beside_texts(sessions) -> None:
    # psycopg's own placeholders, as the API's raw reads send them
    arrays = f"{array_of('%(p)s', 'text')}, {array_of('%(n)s', 'numeric')}"
    sql = f"SELECT * FROM unnest({arrays}) AS u(p, n)"  # noqa: S608 - constant SQL
    with session_scope(sessions) as s:
        raw = s.connection().exec_driver_sql(
            sql, {"p": joined(["b", "a"]), "n": joined([-7, UINT128_MAX])}
        )
        assert [tuple(row) for row in raw] == [("b", -7), ("a", UINT128_MAX)]


def test_any_of_selects_and_updates_in_core_statements(sessions) -> None:
    with session_scope(sessions) as s:
        contract = add_contract(s)
        tokens = [add_token(s, contract, n) for n in (1, UINT128_MAX, 7)]
    with session_scope(sessions) as s:
        numbers = [UINT128_MAX, 1, 999]
        found = s.scalars(
            select(Token.token_number).where(
                Token.smart_contract_id == contract.id,
                Token.token_number == any_of("numbers", numbers, Numeric),
            )
        ).all()
        assert sorted(found) == [1, UINT128_MAX]
        ids = [tokens[0].id, tokens[2].id]
        updated = s.execute(
            update(Job)
            .where(Job.token_id == any_of("ids", ids, Integer))
            .values(status=JobStatus.FAILED)
            .returning(Job.token_id)
        ).scalars()
        assert sorted(updated) == sorted(ids)
        nothing = select(Token.id).where(Token.tx_id == any_of("tx_ids", [], Text))
        assert s.scalars(nothing).all() == []


def test_json_rows_round_trip_through_jsonb_to_recordset(sessions) -> None:
    rows = [
        {"id": 1, "supply": UINT128_MAX, "name": 'a, "quoted" name'},
        {"id": 2, "supply": None, "name": None},
    ]
    statement = text(
        "SELECT id, supply, name FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
        " AS u(id integer, supply numeric, name text) ORDER BY id"
    )
    with session_scope(sessions) as s:
        back = [tuple(row) for row in s.execute(statement, {"rows": json_rows(rows)})]
    assert back == [(1, UINT128_MAX, 'a, "quoted" name'), (2, None, None)]
