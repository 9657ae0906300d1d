"""Lists and rows as single SQL parameters: the text sent, without a database."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import Integer, Numeric, Text, select, update
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from shared.models import Job, Token
from shared.sql_params import any_of, array_of, joined, json_rows

DIALECT = PGDialect_psycopg()


def test_joined_separates_values_with_commas() -> None:
    assert joined([1, 22, 333]) == "1,22,333"
    assert joined(["SP1.a", "SP2.b-c_d"]) == "SP1.a,SP2.b-c_d"
    assert joined(n for n in (5,)) == "5"


def test_joined_keeps_big_and_negative_numbers_exact() -> None:
    assert joined([2**128 - 1, -(2**64), 0]) == (
        "340282366920938463463374607431768211455,-18446744073709551616,0"
    )
    assert joined([Decimal("-12.50")]) == "-12.50"


def test_an_empty_list_is_an_empty_string_and_none_stays_none() -> None:
    assert joined([]) == ""
    assert joined(None) is None


@pytest.mark.parametrize("values", [["a,b"], ["a", "b,"], [","]])
def test_a_value_holding_a_comma_is_refused(values: list[str]) -> None:
    with pytest.raises(ValueError, match="comma-joined"):
        joined(values)


@pytest.mark.parametrize("values", [[""], ["a", ""]])
def test_an_empty_string_is_refused(values: list[str]) -> None:
    # Alone it would read back as no element at all.
    with pytest.raises(ValueError, match="''"):
        joined(values)


def test_array_of_casts_the_split_parameter() -> None:
    assert array_of(":ids", "integer") == "CAST(string_to_array(:ids, ',') AS integer[])"
    assert array_of("%(principals)s", "text") == (
        "CAST(string_to_array(%(principals)s, ',') AS text[])"
    )


@pytest.mark.parametrize("placeholder", ["ids", ":", "%(ids)", ":ids; DROP TABLE tokens", ""])
def test_array_of_takes_only_a_placeholder(placeholder: str) -> None:
    with pytest.raises(ValueError, match="not a placeholder"):
        array_of(placeholder, "integer")


def test_any_of_binds_one_text_parameter_in_a_core_update() -> None:
    statement = update(Job).where(Job.id == any_of("ids", [3, 1, 2], Integer)).values(retry_count=0)
    compiled = statement.compile(dialect=DIALECT)
    assert "jobs.id = ANY (CAST(string_to_array(%(ids)s::VARCHAR, ',') AS INTEGER[]))" in str(
        compiled
    )
    assert compiled.params["ids"] == "3,1,2"


def test_any_of_casts_to_the_element_type() -> None:
    query = select(Token.id).where(
        Token.token_number == any_of("numbers", [2**128 - 1], Numeric),
        Token.tx_id == any_of("tx_ids", [], Text),
    )
    compiled = query.compile(dialect=DIALECT)
    assert "AS NUMERIC[]))" in str(compiled)
    assert "AS TEXT[]))" in str(compiled)
    assert compiled.params == {"numbers": str(2**128 - 1), "tx_ids": ""}


def test_any_of_refuses_what_joined_refuses() -> None:
    with pytest.raises(ValueError, match="comma-joined"):
        any_of("hashes", ["0x01,0x02"], Text)


def test_json_rows_is_one_json_array_of_objects() -> None:
    rows = json_rows({"id": n, "supply": 2**128 - 1, "name": None} for n in (1, 2))
    assert json.loads(rows) == [
        {"id": 1, "supply": 2**128 - 1, "name": None},
        {"id": 2, "supply": 2**128 - 1, "name": None},
    ]
    assert json_rows([]) == "[]"
