"""`GET /search`: many tokens by `PRINCIPAL[:TOKEN_NUMBER]` in one query, in request order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Numeric, Select, Text, cast, func, literal, select, true
from sqlalchemy.orm import Session

from shared.models import SmartContract, Token
from shared.services.api_summaries import TokenSummary, metadata_row, summary_columns

MAX_IDENTIFIERS = 50
DEFAULT_TOKEN_NUMBER = 1


@dataclass(frozen=True)
class TokenKey:
    principal: str
    token_number: int = DEFAULT_TOKEN_NUMBER

    @classmethod
    def parse(cls, identifier: str) -> TokenKey:
        """`PRINCIPAL` or `PRINCIPAL:TOKEN_NUMBER` (already checked against the pattern)."""
        principal, _, number = identifier.partition(":")
        return cls(principal, int(number) if number else DEFAULT_TOKEN_NUMBER)


@dataclass(frozen=True)
class SearchHit:
    token_number: int
    token_type: str
    summary: TokenSummary


def _found(keys: Sequence[TokenKey], *columns: Any) -> Select[Any]:
    """`columns` over the requested keys that exist, with their position in the request."""
    wanted = (
        func.unnest(
            literal([k.principal for k in keys], ARRAY(Text)),
            cast(literal([str(k.token_number) for k in keys], ARRAY(Text)), ARRAY(Numeric)),
        )
        .table_valued("principal", "token_number", with_ordinality="position")
        .render_derived(name="wanted")
    )
    return (
        select(*columns)
        .select_from(wanted)
        .join(SmartContract, SmartContract.principal == wanted.c.principal)
        .join(
            Token,
            (Token.smart_contract_id == SmartContract.id)
            & (Token.token_number == wanted.c.token_number),
        )
        .order_by(wanted.c.position)
    )


def search_tokens(
    session: Session, keys: Sequence[TokenKey], locale: str | None = None
) -> list[SearchHit]:
    """One hit per distinct key found; a locale without a row just leaves metadata fields out."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    metadata = metadata_row(locale or None)
    statement = _found(keys, Token.token_number, Token.type, *summary_columns(metadata)).outerjoin(
        metadata, true()
    )
    return [
        SearchHit(int(row.token_number), str(row.type), TokenSummary.from_row(row))
        for row in session.execute(statement)
    ]


def search_etag(session: Session, keys: Sequence[TokenKey]) -> str | None:
    """How many of the keys exist and their latest change: any insert, update or delete moves it."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return None
    changed = func.coalesce(Token.updated_at, Token.created_at)
    statement = _found(keys, func.count(), func.max(func.extract("epoch", changed))).order_by(None)
    found, latest = session.execute(statement).one()
    return f"{found}-{latest}" if found else None
