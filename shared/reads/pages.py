"""A collection's tokens, an owner's gallery and a batch of tokens, as token items
(docs/marketplace-api.md).

Pages are keyset pages: a cursor names the last token of the previous page (its token number,
and for a gallery its contract too), so a page is an index range scan however deep it is, and
tokens minted meanwhile are neither skipped nor repeated. Each page is one statement, plus
the count.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.jsonio import dumps
from shared.models import token_type_sql
from shared.reads.items import ItemOptions, item_columns, item_joins, item_of
from shared.reads.tokens import RowSource
from shared.sql_params import array_of, joined

DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 200
# A page stops before the item that would take it past this size.
MAX_PAGE_BYTES = 1_000_000
_CURSOR = re.compile(r"(?:(?P<contract>[0-9]{1,10})\.)?(?P<number>[0-9]{1,39})")


class BadCursor(ValueError):
    """A cursor this service did not write."""


@dataclass(frozen=True, order=True)
class Position:
    """Where a page ends: the last token's contract (galleries only) and number."""

    contract_id: int
    token_number: int

    def cursor(self, with_contract: bool) -> str:
        text = (
            f"{self.contract_id}.{self.token_number}" if with_contract else f"{self.token_number}"
        )
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, cursor: str, with_contract: bool) -> Position:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise BadCursor(cursor) from None
        match = _CURSOR.fullmatch(text)
        if match is None or (match["contract"] is not None) != with_contract:
            raise BadCursor(cursor)
        return cls(int(match["contract"] or 0), int(match["number"]))


@dataclass(frozen=True)
class Contract:
    id: int
    token_type: str | None  # nft, sft or ft; None for a contract of no token standard


@dataclass(frozen=True)
class Page:
    """A page's items as one JSON array's contents (`items`, empty when none), whether tokens
    follow, where the page ends, and the contract and token type of its tokens."""

    items: bytes
    more: bool
    last: Position | None
    contract: Contract | None


def _page(source: RowSource, sql: str, params: dict[str, Any], limit: int) -> Page:
    """`sql` selects up to `%(limit)s` tokens as contract_id, token_number, token_type and
    `item_columns`, in page order. The page keeps up to `limit` items and stops before the
    item that would take it past MAX_PAGE_BYTES (the first always stays: a page moves on)."""
    rows = source.all(sql, {**params, "limit": limit + 1})
    items: list[bytes] = []
    size = 0
    for row in rows[:limit]:
        item = item_of(row)
        if items and size + len(item) > MAX_PAGE_BYTES:
            break
        items.append(item)
        size += len(item) + 1
    if not items:
        return Page(b"", False, None, None)
    last = rows[len(items) - 1]
    return Page(
        b",".join(items),
        len(rows) > len(items),
        Position(int(last.contract_id), int(last.token_number)),
        Contract(rows[0].contract_id, rows[0].token_type),
    )


_CONTRACT_SQL = f"""
    SELECT c.id, {token_type_sql("c.sip")} AS token_type
    FROM smart_contracts c WHERE c.principal = %(principal)s
"""  # noqa: S608 - composed of constant SQL, values are bound


def find_contract(source: RowSource, principal: str) -> Contract | None:
    row = source.one(_CONTRACT_SQL, {"principal": principal})
    return None if row is None else Contract(row.id, row.token_type)


@functools.cache
def _collection_sql(options: ItemOptions) -> str:
    return f"""
    SELECT c.id AS contract_id, ti.token_number, {token_type_sql("c.sip")} AS token_type,
           {item_columns(options)}
    FROM (SELECT id, sip FROM smart_contracts WHERE principal = %(principal)s) c
    CROSS JOIN LATERAL (
        SELECT ti.* FROM token_items ti
        WHERE ti.smart_contract_id = c.id
          AND ti.token_number > CAST(%(after)s AS numeric)
          AND (CAST(%(numbers)s AS text) IS NULL
               OR ti.token_number = ANY({array_of("%(numbers)s", "numeric")}))
        ORDER BY ti.smart_contract_id, ti.token_number
        LIMIT %(limit)s) ti
    {item_joins(options)}
    ORDER BY ti.token_number
    """  # noqa: S608 - composed of constant SQL, values are bound


def collection_rows(
    source: RowSource,
    principal: str,
    after: Position | None,
    limit: int,
    options: ItemOptions,
    token_numbers: Sequence[int] | None = None,
) -> Page:
    """Up to `limit` of the contract's tokens after `after`, in token-number order (an empty
    page: `find_contract` tells an unknown contract from one with no tokens there)."""
    params = {
        **options.params(),
        "principal": principal,
        "after": -1 if after is None else after.token_number,
        "numbers": joined(token_numbers),
    }
    return _page(source, _collection_sql(_shape(options)), params, limit)


_COUNT_SQL = f"""
    SELECT count(*) AS total FROM tokens t
    WHERE t.smart_contract_id = %(contract_id)s
      AND t.token_number = ANY({array_of("%(numbers)s", "numeric")})
"""  # noqa: S608 - composed of constant SQL, values are bound


# Kept by Postgres as tokens come and go (migration 0009): one primary-key lookup.
_TOTAL_SQL = "SELECT tokens AS total FROM token_counts WHERE smart_contract_id = %(contract_id)s"


def collection_total(
    source: RowSource, contract_id: int, token_numbers: Sequence[int] | None = None
) -> int:
    """How many tokens the collection has, or how many of these ids it has (at most 100
    index lookups)."""
    if token_numbers is None:
        row = source.one(_TOTAL_SQL, {"contract_id": contract_id})
    else:
        row = source.one(_COUNT_SQL, {"contract_id": contract_id, "numbers": joined(token_numbers)})
    return 0 if row is None else int(row.total)


@functools.cache
def _gallery_sql(options: ItemOptions) -> str:
    return f"""
    SELECT o.smart_contract_id AS contract_id, o.token_number, NULL AS token_type,
           {item_columns(options)}
    FROM nft_ownership o
    JOIN token_items ti ON ti.token_id = o.token_id
    {item_joins(options, owner=False)}
    WHERE o.owner = %(owner)s
      AND (o.smart_contract_id, o.token_number)
          > (%(after_contract)s, CAST(%(after_number)s AS numeric))
      AND (CAST(%(contracts)s AS text) IS NULL OR o.smart_contract_id IN (
           SELECT id FROM smart_contracts
           WHERE principal = ANY({array_of("%(contracts)s", "text")})))
    ORDER BY o.smart_contract_id, o.token_number
    LIMIT %(limit)s
    """  # noqa: S608 - composed of constant SQL, values are bound


_GALLERY_COUNT_SQL = f"""
    SELECT count(*) AS total FROM nft_ownership o
    WHERE o.owner = %(owner)s
      AND (CAST(%(contracts)s AS text) IS NULL OR o.smart_contract_id IN (
           SELECT id FROM smart_contracts
           WHERE principal = ANY({array_of("%(contracts)s", "text")})))
"""  # noqa: S608 - composed of constant SQL, values are bound


def gallery_rows(
    source: RowSource,
    owner: str,
    after: Position | None,
    limit: int,
    options: ItemOptions,
    contracts: Sequence[str] | None = None,
) -> tuple[Page, int]:
    """Up to `limit` NFTs `owner` holds now after `after` (contract, then token number), and
    how many it holds in all."""
    params = {
        **options.params(),
        "owner": owner,
        "after_contract": -1 if after is None else after.contract_id,
        "after_number": -1 if after is None else after.token_number,
        "contracts": joined(contracts),
    }
    page = _page(source, _gallery_sql(_shape(options)), params, limit)
    total = source.one(_GALLERY_COUNT_SQL, params)
    return page, int(total.total)


@functools.cache
def _batch_sql(options: ItemOptions) -> str:
    """A row per requested token, in request order; `body` NULL when it is not stored, and
    `contract_found` NULL when its contract is not either."""
    return f"""
    SELECT wanted.principal AS wanted_principal, wanted.token_number AS wanted_number,
           c.id AS contract_found, {item_columns(options)}
    FROM unnest({array_of("%(principals)s", "text")}, {array_of("%(numbers)s", "numeric")})
         WITH ORDINALITY AS wanted(principal, token_number, position)
    -- LIMIT 1 keeps it a lookup per key: joined, the planner hashes every contract
    LEFT JOIN LATERAL (
        SELECT c.id FROM smart_contracts c WHERE c.principal = wanted.principal LIMIT 1) c ON true
    LEFT JOIN token_items ti
           ON ti.smart_contract_id = c.id AND ti.token_number = wanted.token_number
    {item_joins(options)}
    ORDER BY wanted.position
    """  # noqa: S608 - composed of constant SQL, values are bound


def batch_items(source: RowSource, keys: Sequence[tuple[str, int]], options: ItemOptions) -> bytes:
    """The contents of a JSON array: per (principal, token number), in order, its item or
    `{contract_id, token_id, error}`."""
    if not keys:
        return b""
    params = {
        **options.params(),
        "principals": joined(principal for principal, _ in keys),
        "numbers": joined(number for _, number in keys),
    }
    rows = source.all(_batch_sql(_shape(options)), params)
    return b",".join(item_of(row) if row.body is not None else _missing(row) for row in rows)


def _missing(row: Any) -> bytes:
    error = "Contract not found" if row.contract_found is None else "Token not found"
    token_id = str(int(row.wanted_number))
    return dumps({"contract_id": row.wanted_principal, "token_id": token_id, "error": error})


def _shape(options: ItemOptions) -> ItemOptions:
    """What a statement depends on: stored items or rendered ones, with or without the raw
    document (the locale itself is bound)."""
    return ItemOptions(locale=None if options.stored else "", include_raw=options.include_raw)
