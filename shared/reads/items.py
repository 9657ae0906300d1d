"""Token items: the one shape every marketplace route answers with
(docs/marketplace-api.md#token-item).

Most of an item changes only when its token or metadata does, and Postgres keeps that part
rendered in `token_items.body` (migration 0009, docs/marketplace-api.md#stored-items). A
statement reads the stored part of its tokens (`ti`) and what changes on its own: the owner
and mint (`o`, `nft_ownership`) and the job (`j`: a fetch pending, the last one's error), which
`item_of` adds at the stored JSON's end. An item for `?locale=` or with `?include=raw` renders
the stored part from the locale's metadata row instead, with the function the triggers use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import invalid_reason_message
from shared.jsonio import RawJson, dumps
from shared.models import JobStatus

MAX_TOKEN_NUMBER = 2**128 - 1
_IN_PROGRESS = (JobStatus.PENDING.value, JobStatus.QUEUED.value)
_ENDED_BADLY = (JobStatus.INVALID.value, JobStatus.FAILED.value)


@dataclass(frozen=True)
class ItemOptions:
    locale: str | None = None
    include_raw: bool = False

    @property
    def stored(self) -> bool:
        """The stored items serve: the default locale, without the document."""
        return self.locale is None and not self.include_raw

    def params(self) -> dict[str, Any]:
        """The parameters every item statement binds."""
        return {"locale": self.locale}


def token_id_hex(number: int) -> str:
    """`0x` and the id as a 128-bit big-endian number: 32 hex digits."""
    return f"0x{number:032x}"


def item_columns(options: ItemOptions) -> str:
    """The SELECT list of an item: its stored part (or, for a locale or the raw document, the
    same rendered from the shown metadata row `lm.m`) and the fields read now."""
    stored = "ti.body"
    if not options.stored:  # NULL as the stored body is for a token not stored (a batch's)
        stored = "CASE WHEN ti.token_id IS NOT NULL THEN token_item_json(t, lc.principal, lm.m) END"
    raw = "(lm.m).raw::text" if options.include_raw else "NULL"
    return f"""{stored} AS body, {raw} AS raw,
           o.owner, o.burned, o.mint_address, o.mint_tx_id, o.mint_block_height,
           o.mint_timestamp, j.status AS job_status, j.invalid_reason"""


def item_joins(options: ItemOptions, *, owner: bool = True) -> str:
    """What the item of stored token `ti` reads besides it: its owner (unless the statement
    joins `o` itself), its job and, for a locale or the raw document, its token row, contract
    and shown metadata row. Each an index lookup."""
    joins = (_OWNER_JOIN if owner else "") + _JOB_JOIN
    return joins + ("" if options.stored else _RENDER_JOINS)


_OWNER_JOIN = "LEFT JOIN nft_ownership o ON o.token_id = ti.token_id"
_JOB_JOIN = """
    LEFT JOIN LATERAL (
        SELECT j.status, j.invalid_reason FROM jobs j
        WHERE j.token_id = ti.token_id AND j.smart_contract_id IS NULL LIMIT 1) j ON true
"""
# The locale's metadata row, else the default row.
_RENDER_JOINS = """
    LEFT JOIN tokens t ON t.id = ti.token_id
    LEFT JOIN smart_contracts lc ON lc.id = ti.smart_contract_id
    LEFT JOIN LATERAL (
        SELECT m FROM metadata m
        WHERE m.token_id = ti.token_id
          AND (m.l10n_default OR m.l10n_locale = CAST(%(locale)s AS text))
        ORDER BY m.l10n_locale IS NOT DISTINCT FROM CAST(%(locale)s AS text) DESC, m.id
        LIMIT 1) lm ON true
"""


def item_of(row: Any) -> bytes:
    """The item of a row selected with `item_columns`, encoded: the stored JSON with the
    fields read now added at its end."""
    now: dict[str, Any] = {
        "owner": row.owner,
        "burned": bool(row.burned),
        "mint_info": _mint_info(row),
        "awaiting_metadata_update": row.job_status in _IN_PROGRESS,
    }
    if row.job_status in _ENDED_BADLY:
        now["error"] = _error(row)
    if row.raw is not None:
        now["raw"] = RawJson(row.raw)
    stored: str = row.body
    return stored.encode()[:-1] + b"," + dumps(now)[1:]


def _mint_info(row: Any) -> dict[str, Any] | None:
    if row.mint_tx_id is None:
        return None
    return {
        "address": row.mint_address,
        "transaction_hash": row.mint_tx_id,
        "block_height": row.mint_block_height,
        "timestamp": row.mint_timestamp.isoformat(),
    }


def _error(row: Any) -> dict[str, Any]:
    """What the detail route says of a token whose last fetch failed."""
    if row.job_status == JobStatus.INVALID.value:
        return {"code": row.invalid_reason, "message": invalid_reason_message(row.invalid_reason)}
    return {"code": None, "message": "Metadata fetch failed"}
