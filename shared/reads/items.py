"""Token items: the one shape every marketplace route answers with
(docs/marketplace-api.md#token-item).

A page of a collection, an owner's gallery and a batch are each one statement that selects
`ITEM_COLUMNS` for its tokens: the token row, its owner and mint (`nft_ownership`), its job,
and the metadata row shown for `?locale=` (the locale's row, else the default row) with its
attributes, properties and normalized fields aggregated in place. `item_of` turns a row into
the item; the stored JSON documents go into it as the text Postgres sends (`RawJson`).
Plain SQL with psycopg placeholders, sent through a `RowSource`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.errors import invalid_reason_message
from shared.jsonio import RawJson
from shared.metadata.normalize import normalize
from shared.models import JobStatus, TokenType
from shared.reads.tokens import METADATA_JSON_COLUMNS, metadata_object

MAX_TOKEN_NUMBER = 2**128 - 1
_IN_PROGRESS = (JobStatus.PENDING.value, JobStatus.QUEUED.value)
_ENDED_BADLY = (JobStatus.INVALID.value, JobStatus.FAILED.value)


@dataclass(frozen=True)
class ItemOptions:
    locale: str | None = None
    include_raw: bool = False

    def params(self) -> dict[str, Any]:
        return {"locale": self.locale, "include_raw": self.include_raw}


def item_columns() -> str:
    """The SELECT list of an item; the statement names the token `t`, its contract `c`."""
    return (
        """
           t.id AS token_id, t.type::text AS token_type, t.token_number, t.uri, t.name,
           t.symbol, t.decimals, t.total_supply, t.updated_at, c.principal,
           o.owner, o.burned, o.mint_address, o.mint_tx_id, o.mint_block_height,
           o.mint_timestamp,
           j.status AS job_status, j.invalid_reason,
           m.id AS metadata_id, m.sip, m.name AS m_name, m.description, m.image,
           m.cached_image, m.cached_thumbnail_image, m.normalized::text AS normalized,
           CASE WHEN %(include_raw)s THEN m.raw::text END AS raw,
    """
        + METADATA_JSON_COLUMNS
    )


def item_joins(*, owner: bool = True) -> str:
    """Owner (unless the statement joins `o` itself), job and shown metadata row of token
    `t`; each an index lookup."""
    return (_OWNER_JOIN if owner else "") + _JOB_AND_METADATA_JOINS


_OWNER_JOIN = "LEFT JOIN nft_ownership o ON o.token_id = t.id"
_JOB_AND_METADATA_JOINS = """
    LEFT JOIN LATERAL (
        SELECT j.status, j.invalid_reason FROM jobs j
        WHERE j.token_id = t.id AND j.smart_contract_id IS NULL LIMIT 1) j ON true
    LEFT JOIN LATERAL (
        SELECT m.* FROM metadata m
        WHERE m.token_id = t.id
          AND (m.l10n_default OR m.l10n_locale = CAST(%(locale)s AS text))
        ORDER BY m.l10n_locale IS NOT DISTINCT FROM CAST(%(locale)s AS text) DESC, m.id
        LIMIT 1) m ON true
"""


def item_of(row: Any) -> dict[str, Any]:
    """The token item of a row selected with `item_columns`."""
    number = int(row.token_number)
    item: dict[str, Any] = {
        "contract_id": row.principal,
        "token_type": row.token_type,
        "token_id": str(number),
        "token_id_hex": token_id_hex(number),
        "owner": row.owner,
        "burned": bool(row.burned),
        "mint_info": _mint_info(row),
        "token_uri": row.uri,
        "metadata": metadata_object(row) if row.metadata_id is not None else None,
        "normalized": _normalized(row),
        "metadata_updated_at": _iso(row.updated_at),
        "awaiting_metadata_update": row.job_status in _IN_PROGRESS,
    }
    if row.cached_image is not None:
        item["cached_image"] = row.cached_image
    if row.cached_thumbnail_image is not None:
        item["cached_thumbnail_image"] = row.cached_thumbnail_image
    if row.token_type == TokenType.FT:
        item.update(name=row.name, symbol=row.symbol)
    if row.token_type in (TokenType.FT, TokenType.SFT):
        item["decimals"] = row.decimals
        item["total_supply"] = None if row.total_supply is None else str(row.total_supply)
    if row.job_status in _ENDED_BADLY:
        item["error"] = _error(row)
    if row.raw is not None:
        item["raw"] = RawJson(row.raw)
    return item


def token_id_hex(number: int) -> str:
    """`0x` and the id as a 128-bit big-endian number: 32 hex digits."""
    return f"0x{number:032x}"


def _normalized(row: Any) -> dict[str, Any] | RawJson:
    """Stored with the document; for a row stored before documents were kept, what the
    metadata row itself holds (its other fields empty)."""
    if row.normalized is not None:
        return RawJson(row.normalized)
    if row.metadata_id is None:
        return normalize({})
    document = {
        "name": row.m_name,
        "description": row.description,
        "image": row.image,
        "attributes": json.loads(row.attributes) if row.attributes else [],
        "properties": json.loads(row.properties) if row.properties else {},
    }
    return normalize(document)


def _mint_info(row: Any) -> dict[str, Any] | None:
    if row.mint_tx_id is None:
        return None
    return {
        "address": row.mint_address,
        "transaction_hash": row.mint_tx_id,
        "block_height": row.mint_block_height,
        "timestamp": _iso(row.mint_timestamp),
    }


def _error(row: Any) -> dict[str, Any]:
    """What the detail route says of a token whose last fetch failed."""
    if row.job_status == JobStatus.INVALID.value:
        return {"code": row.invalid_reason, "message": invalid_reason_message(row.invalid_reason)}
    return {"code": None, "message": "Metadata fetch failed"}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
