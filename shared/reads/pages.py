"""A collection's tokens, an owner's gallery and a batch of tokens, as token items
(docs/marketplace-api.md).

Pages are keyset pages: a cursor names the last token of the previous page (its token number,
and for a gallery its contract too), so a page is an index range scan however deep it is, and
tokens minted meanwhile are neither skipped nor repeated. Each page is one statement, plus
one count.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.reads.items import ItemOptions, item_columns, item_joins
from shared.reads.tokens import RowSource
from shared.sql_params import array_of, joined

DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 200
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
    principal: str
    token_type: str | None  # nft, sft or ft; None for a contract of no token standard
    total: int


@dataclass(frozen=True)
class Rows:
    """A page's rows; `more` when rows beyond the limit exist."""

    rows: list[Any]
    more: bool


_CONTRACT_SQL = """
    SELECT c.id, c.principal,
           CASE c.sip WHEN 'sip-009' THEN 'nft' WHEN 'sip-013' THEN 'sft'
                      WHEN 'sip-010' THEN 'ft' END AS token_type,
           (SELECT count(*) FROM tokens t WHERE t.smart_contract_id = c.id
              AND (CAST(%(numbers)s AS text) IS NULL
                   OR t.token_number = ANY(CAST(string_to_array(%(numbers)s, ',') AS numeric[])))
           ) AS total
    FROM smart_contracts c WHERE c.principal = %(principal)s
"""


def find_contract(
    source: RowSource, principal: str, token_numbers: Sequence[int] | None = None
) -> Contract | None:
    """The contract and how many of its tokens (of `token_numbers`, when given) are stored."""
    row = source.one(_CONTRACT_SQL, {"principal": principal, "numbers": joined(token_numbers)})
    if row is None:
        return None
    return Contract(row.id, row.principal, row.token_type, int(row.total))


_COLLECTION_SQL = f"""
    SELECT {item_columns()}
    FROM tokens t
    JOIN smart_contracts c ON c.id = t.smart_contract_id
    {item_joins()}
    WHERE t.smart_contract_id = %(contract_id)s
      AND t.token_number > CAST(%(after)s AS numeric)
      AND (CAST(%(numbers)s AS text) IS NULL
           OR t.token_number = ANY({array_of("%(numbers)s", "numeric")}))
    ORDER BY t.token_number
    LIMIT %(limit)s
"""  # noqa: S608 - composed of constant SQL, values are bound


def collection_rows(
    source: RowSource,
    contract: Contract,
    after: Position | None,
    limit: int,
    options: ItemOptions,
    token_numbers: Sequence[int] | None = None,
) -> Rows:
    """Up to `limit` of the contract's tokens after `after`, in token-number order."""
    params = {
        **options.params(),
        "contract_id": contract.id,
        "after": -1 if after is None else after.token_number,
        "numbers": joined(token_numbers),
        "limit": limit + 1,
    }
    rows = source.all(_COLLECTION_SQL, params)
    return Rows(rows[:limit], len(rows) > limit)


_GALLERY_SQL = f"""
    SELECT {item_columns()}, o.smart_contract_id AS contract_id
    FROM nft_ownership o
    JOIN tokens t ON t.id = o.token_id
    JOIN smart_contracts c ON c.id = o.smart_contract_id
    {item_joins(owner=False)}
    WHERE o.owner = %(owner)s
      AND (o.smart_contract_id, o.token_number)
          > (%(after_contract)s, CAST(%(after_number)s AS numeric))
      AND (CAST(%(contracts)s AS text) IS NULL
           OR c.principal = ANY({array_of("%(contracts)s", "text")}))
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
) -> tuple[Rows, int]:
    """Up to `limit` NFTs `owner` holds now after `after` (contract, then token number), and
    how many it holds in all."""
    params = {
        **options.params(),
        "owner": owner,
        "after_contract": -1 if after is None else after.contract_id,
        "after_number": -1 if after is None else after.token_number,
        "contracts": joined(contracts),
        "limit": limit + 1,
    }
    rows = source.all(_GALLERY_SQL, params)
    total = source.one(_GALLERY_COUNT_SQL, params)
    return Rows(rows[:limit], len(rows) > limit), int(total.total)


_BATCH_SQL = f"""
    SELECT wanted.position, wanted.principal AS wanted_principal,
           c.id AS contract_found, {item_columns()}
    FROM unnest({array_of("%(principals)s", "text")}, {array_of("%(numbers)s", "numeric")})
         WITH ORDINALITY AS wanted(principal, token_number, position)
    LEFT JOIN smart_contracts c ON c.principal = wanted.principal
    LEFT JOIN tokens t ON t.smart_contract_id = c.id AND t.token_number = wanted.token_number
    {item_joins()}
    ORDER BY wanted.position
"""  # noqa: S608 - composed of constant SQL, values are bound


def batch_rows(
    source: RowSource, keys: Sequence[tuple[str, int]], options: ItemOptions
) -> list[Any]:
    """One row per key, in order: `contract_found` and `token_id` NULL when not stored."""
    if not keys:
        return []
    params = {
        **options.params(),
        "principals": joined(principal for principal, _ in keys),
        "numbers": joined(number for _, number in keys),
    }
    return source.all(_BATCH_SQL, params)
