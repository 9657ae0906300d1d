"""A token as the list and search routes show it: its own columns plus its metadata's first row."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import LateralFromClause

from shared.models import Metadata, SmartContract, Token

LIKE_ESCAPE = "\\"


class TokenSummary(Protocol):
    """What a result row of the list and search queries carries (their rows are used as they
    come: copying 50 rows into objects was a sixth of a search request's CPU)."""

    @property
    def contract_principal(self) -> str: ...
    @property
    def tx_id(self) -> str: ...
    @property
    def fungible_token_name(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def symbol(self) -> str | None: ...
    @property
    def decimals(self) -> int | None: ...
    @property
    def total_supply(self) -> Decimal | int | None: ...
    @property
    def uri(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def image(self) -> str | None: ...
    @property
    def cached_image(self) -> str | None: ...
    @property
    def cached_thumbnail_image(self) -> str | None: ...


def metadata_row(locale: str | None = None) -> LateralFromClause:
    """The token's metadata row for `locale` (default locale when None): at most one, by index."""
    selected = (
        Metadata.l10n_locale == locale if locale is not None else Metadata.l10n_default.is_(True)
    )
    return (
        select(
            Metadata.description,
            Metadata.image,
            Metadata.cached_image,
            Metadata.cached_thumbnail_image,
        )
        .where(Metadata.token_id == Token.id, selected)
        .order_by(Metadata.id)
        .limit(1)
        .lateral("m")
    )


def summary_columns(
    metadata: LateralFromClause,
) -> list[ColumnElement[Any] | InstrumentedAttribute[Any]]:
    """TokenSummary's fields, labelled as its attributes, over tokens, contracts, `metadata`."""
    return [
        SmartContract.principal.label("contract_principal"),
        SmartContract.tx_id,
        SmartContract.fungible_token_name,
        Token.name,
        Token.symbol,
        Token.decimals,
        Token.total_supply,
        Token.uri,
        metadata.c.description,
        metadata.c.image,
        metadata.c.cached_image,
        metadata.c.cached_thumbnail_image,
    ]


def with_contract(query: Select[Any]) -> Select[Any]:
    return query.join(SmartContract, SmartContract.id == Token.smart_contract_id)


def like_escape(value: str) -> str:
    """`%` and `_` typed by a user match themselves, not any text."""
    return (
        value.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
