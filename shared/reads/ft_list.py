"""`GET /ft`: a page of fungible tokens and the full filtered count, in one query.

One row per token (its default-locale metadata only). `type = 'ft'` is a literal so that the
partial `(type, LOWER(name|symbol)) WHERE type = 'ft'` indexes give the order; ties are broken
by token id so that pages never overlap. The page is chosen on `tokens` alone and only its rows
are joined to their contract and metadata, so a deep offset skips index entries, not joins.
Where the list differs from Hiro's: docs/reference-differences.md#ft-list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    Text,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql.elements import ColumnElement

from shared.models import Metadata, SmartContract, Token
from shared.reads.summaries import (
    LIKE_ESCAPE,
    TokenSummary,
    like_escape,
    metadata_row,
    summary_columns,
    with_contract,
)
from shared.reads.tokens import RowSource

_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]

# The chain tip (Hiro's list ETag) and the latest token change, both read through an index
# (docs/reference-differences.md#etags).
_LIST_ETAG = """
    (SELECT block_height FROM chain_tip LIMIT 1)::text || '-'
        || coalesce((SELECT EXTRACT(epoch FROM max(COALESCE(updated_at, created_at)))
                     FROM tokens)::text, '0')
"""

OrderBy = Literal["name", "symbol"]
Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class FtListQuery:
    name: str | None = None
    symbol: str | None = None
    address: str | None = None
    valid_metadata_only: bool = False
    offset: int = 0
    limit: int = 20
    order_by: OrderBy = "name"
    order: Order = "asc"

    def shape(self) -> tuple[bool, bool, bool, bool, OrderBy, Order]:
        """What decides the statement's text; empty strings filter nothing, as in Hiro's API."""
        return (
            bool(self.name),
            bool(self.symbol),
            bool(self.address),
            self.valid_metadata_only,
            self.order_by,
            self.order,
        )

    def parameters(self) -> dict[str, Any]:
        return {
            "name_pattern": f"%{like_escape(self.name or '')}%",
            "symbol": self.symbol,
            "address_prefix": f"{like_escape(self.address or '')}%",
            "limit": self.limit,
            "offset": self.offset,
        }


@dataclass(frozen=True)
class FtPage:
    total: int
    results: list[TokenSummary]
    # Changes when the chain tip moves (Hiro's list ETag) and when any token changes.
    etag: str


def _conditions(
    name: bool, symbol: bool, address: bool, valid_only: bool
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Token.type == literal_column("'ft'")]
    if name:
        pattern = func.lower(bindparam("name_pattern", type_=Text))
        conditions.append(func.lower(Token.name).like(pattern, escape=LIKE_ESCAPE))
    if symbol:
        conditions.append(func.lower(Token.symbol) == func.lower(bindparam("symbol", type_=Text)))
    if address:
        prefix = bindparam("address_prefix", type_=Text)
        conditions.append(SmartContract.principal.like(prefix, escape=LIKE_ESCAPE))
    if valid_only:
        default_row = Metadata.l10n_default.is_(True)
        conditions.append(exists().where(Metadata.token_id == Token.id, default_row))
    return conditions


@cache
def _statement(
    name: bool, symbol: bool, address: bool, valid_only: bool, order_by: OrderBy, order: Order
) -> Select[Any]:
    """Built once per shape; the values are bound parameters."""
    conditions = _conditions(name, symbol, address, valid_only)

    def filtered(query: Select[Any]) -> Select[Any]:
        query = query.select_from(Token)
        # The contract is only needed to filter by address: every token has one.
        return (with_contract(query) if address else query).where(*conditions)

    key = func.lower(Token.name if order_by == "name" else Token.symbol).label("sort_key")
    ids = (
        filtered(select(Token.id.label("id"), key))
        .order_by(*_order(key, Token.id, order))
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=BigInteger))
        .subquery("ids")
    )
    metadata = metadata_row()
    page = (
        with_contract(
            select(ids.c.sort_key, ids.c.id.label("token_id"), *summary_columns(metadata))
        )
        .select_from(ids.join(Token, Token.id == ids.c.id))
        .outerjoin(metadata, true())
        .subquery("page")
    )
    total = filtered(select(func.count())).scalar_subquery()
    # One row even past the last page, so that the count always comes back
    # (docs/reference-differences.md#ft-list).
    one = select(literal(1).label("one")).subquery("one")
    etag: ColumnElement[str] = literal_column(f"({_LIST_ETAG})")
    return (
        select(total.label("total"), etag.label("etag"), *page.c)
        .select_from(one.outerjoin(page, true()))
        .order_by(*_order(page.c.sort_key, page.c.token_id, order))
    )


@cache
def _sql(shape: tuple[bool, bool, bool, bool, OrderBy, Order]) -> tuple[str, dict[str, Any]]:
    """The statement of a shape as plain SQL with psycopg placeholders, compiled once, and its
    constant parameters; run on a bare connection it skips SQLAlchemy's per-execution cost
    (about half of a list request's CPU in a profile)."""
    compiled = _statement(*shape).compile(dialect=_DIALECT)
    return str(compiled), dict(compiled.params)


def _order(key: Any, tie_breaker: Any, order: Order) -> list[ColumnElement[Any]]:
    if order == "desc":
        return [key.desc(), tie_breaker.desc()]
    return [key.asc(), tie_breaker.asc()]


def list_fungible_tokens(source: RowSource, query: FtListQuery) -> FtPage:
    """The page, the full count and the list's ETag: one statement."""
    sql, constants = _sql(query.shape())
    rows = source.all(sql, {**constants, **query.parameters()})
    results: list[TokenSummary] = [row for row in rows if row.contract_principal is not None]
    return FtPage(total=int(rows[0].total), results=results, etag=rows[0].etag)
