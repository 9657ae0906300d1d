"""How lists and rows are bound to SQL: each as one text parameter that Postgres splits
(`string_to_array`) or unpacks (`jsonb_to_recordset`), never as a Python list for psycopg to
dump element by element (docs/sql.md#lists-and-rows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Text, any_, bindparam, cast, func, literal_column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from shared.jsonio import dumps_text

Scalar = int | str | Decimal
ElementType = Literal["integer", "bigint", "numeric", "text"]

_SEPARATOR = ","
# `:name` (SQLAlchemy `text()`) or `%(name)s` (plain psycopg, as the API's raw reads use).
_PLACEHOLDER = re.compile(r":\w+|%\(\w+\)s")


def joined(values: Iterable[Scalar] | None) -> str | None:
    """The values comma-joined for `string_to_array`; None stays None (SQL NULL), an empty
    list becomes '' (an empty array). A string holding a comma, or an empty string (which
    alone would read back as no element), raises ValueError: principals, hashes and numbers
    hold neither."""
    if values is None:
        return None
    texts = list(map(str, values))
    text = _SEPARATOR.join(texts)
    if text.count(_SEPARATOR) != max(len(texts) - 1, 0) or "" in texts:
        bad = next(t for t in texts if _SEPARATOR in t or not t)
        raise ValueError(f"cannot bind {bad!r} in a comma-joined list")
    return text


def array_of(placeholder: str, element_type: ElementType) -> str:
    """SQL text for the array a `joined` parameter holds, e.g. `array_of(":ids", "integer")`
    is `CAST(string_to_array(:ids, ',') AS integer[])`."""
    if not _PLACEHOLDER.fullmatch(placeholder):
        raise ValueError(f"not a placeholder: {placeholder!r} (write ':name' or '%(name)s')")
    return f"CAST(string_to_array({placeholder}, '{_SEPARATOR}') AS {element_type}[])"


def any_of(
    name: str, values: Iterable[Scalar], element_type: type[TypeEngine[Any]]
) -> ColumnElement[Any]:
    """`ANY(<array_of the values>)` for a Core statement, bound as parameter `name` (unique in
    the statement): `.where(Job.id == any_of("ids", ids, Integer))`."""
    strings = func.string_to_array(
        bindparam(name, joined(values), type_=Text), literal_column(f"'{_SEPARATOR}'")
    )
    return any_(cast(strings, ARRAY(element_type)))


def json_rows(rows: Iterable[Mapping[str, object]]) -> str:
    """Rows as one JSON array of objects, for `jsonb_to_recordset(CAST(:rows AS jsonb))`: one
    parameter for many columns, where `joined` carries one column."""
    return dumps_text(list(rows))
