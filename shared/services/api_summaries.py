"""A token as the list and search routes show it: its own columns plus its metadata's first row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import LateralFromClause

from shared.models import Metadata, SmartContract, Token

LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class TokenSummary:
    contract_principal: str
    tx_id: str
    fungible_token_name: str | None
    name: str | None
    symbol: str | None
    decimals: int | None
    total_supply: int | None
    uri: str | None
    description: str | None
    image: str | None
    cached_image: str | None
    cached_thumbnail_image: str | None

    @classmethod
    def from_row(cls, row: Any) -> TokenSummary:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


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
