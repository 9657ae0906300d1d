"""`GET /search`: many tokens by `PRINCIPAL[:TOKEN_NUMBER]` in one query, in request order.

An NFT or SFT hit is named by its shown metadata row when its token row has no name (only an
FT's `get-name` fills that column); an FT hit keeps the token's own. The same statement
yields the ETag (how many keys exist and their latest change, as window aggregates), so a
request is one round trip, sent as plain SQL (see `RowSource`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.reads.summaries import TokenSummary
from shared.reads.tokens import RowSource, locale_metadata_lateral
from shared.sql_params import array_of, joined

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


_METADATA_COLUMNS = "m.name, m.description, m.image, m.cached_image, m.cached_thumbnail_image"
_SEARCH_SQL = f"""
    SELECT t.token_number, t.type::text AS type,
           c.principal AS contract_principal, c.tx_id, c.fungible_token_name,
           CASE WHEN t.type = 'ft' THEN t.name ELSE COALESCE(t.name, m.name) END AS name,
           t.symbol, t.decimals, t.total_supply, t.uri,
           m.description, m.image, m.cached_image, m.cached_thumbnail_image,
           count(*) OVER () AS found,
           max(EXTRACT(epoch FROM COALESCE(t.updated_at, t.created_at))) OVER () AS latest
    FROM unnest({array_of("%(principals)s", "text")}, {array_of("%(numbers)s", "numeric")})
         WITH ORDINALITY AS wanted(principal, token_number, position)
    JOIN smart_contracts c ON c.principal = wanted.principal
    JOIN tokens t ON t.smart_contract_id = c.id AND t.token_number = wanted.token_number
    {locale_metadata_lateral(_METADATA_COLUMNS)}
    ORDER BY wanted.position
"""  # noqa: S608 - composed of constant SQL, values are bound


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    # How many keys exist and their latest change: any insert, update or delete moves it.
    etag: str | None


def search_tokens(
    source: RowSource, keys: Sequence[TokenKey], locale: str | None = None
) -> SearchResult:
    """One hit per distinct key found; a locale without a row just leaves metadata fields out."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return SearchResult([], None)
    rows = source.all(
        _SEARCH_SQL,
        {
            # Comma-joined: psycopg dumps a list element by element, a quarter of a search
            # request's CPU in a profile (docs/sql.md#lists-and-rows).
            "principals": joined(k.principal for k in keys),
            "numbers": joined(k.token_number for k in keys),
            "locale": locale or None,
        },
    )
    hits = [SearchHit(int(r.token_number), r.type, r) for r in rows]
    return SearchResult(hits, f"{rows[0].found}-{rows[0].latest}" if rows else None)
