"""What the token routes answer, with Hiro's API's errors in its order (see `get_token`).

One query per request: the contract, both jobs, the token (with its ETag) and the selected
metadata row with its attributes and properties aggregated in place. It is plain SQL with
psycopg placeholders, run by any `RowSource`: the API's hot path sends it on a bare psycopg
connection (see `api.db.RawReads`), without SQLAlchemy's per-statement cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.errors import invalid_reason_message
from shared.jsonio import RawJson
from shared.models import JobStatus


class TokenLookupError(Exception):
    """Base of the answers that are not a token."""


class ContractNotFound(TokenLookupError):
    pass


class TokenNotFound(TokenLookupError):
    pass


class LocaleNotFound(TokenLookupError):
    pass


class MetadataFetchInProgress(TokenLookupError):
    pass


class TokenInvalid(TokenLookupError):
    def __init__(self, reason: int | None) -> None:
        super().__init__(invalid_reason_message(reason))
        self.message = invalid_reason_message(reason)


@dataclass(frozen=True)
class TokenView:
    uri: str | None
    name: str | None
    symbol: str | None
    decimals: int | None
    total_supply: int | None
    metadata: dict[str, Any] | None
    contract_principal: str
    tx_id: str
    fungible_token_name: str | None
    # Hiro's token ETag, `updated_at` as epoch seconds; None while unprocessed.
    etag: str | None = None


def locale_metadata_lateral(columns: str) -> str:
    """`LEFT JOIN LATERAL` of the metadata row shown for token `t`, as `m`: the row of the
    `%(locale)s` parameter, or the default row when it is NULL. Used by the token and search
    reads; `shared.reads.summaries.metadata_row` is the list's Core form of the same rule."""
    return f"""
    LEFT JOIN LATERAL (
        SELECT {columns} FROM metadata m
        WHERE m.token_id = t.id AND CASE
            WHEN CAST(%(locale)s AS text) IS NULL THEN m.l10n_default
            ELSE m.l10n_locale = CAST(%(locale)s AS text) END
        ORDER BY m.id LIMIT 1) m ON true
    """  # noqa: S608 - composed of constant SQL, values are bound


# The shown row `m`'s attributes and properties as the JSON text of the answer: stored by the
# worker, or, for a row stored before that, aggregated from their tables in the same shape.
METADATA_JSON_COLUMNS = """
           COALESCE(m.attributes_json, (
               SELECT json_agg(CASE WHEN a.display_type IS NULL
                   THEN json_build_object('trait_type', a.trait_type, 'value', a.value)
                   ELSE json_build_object('trait_type', a.trait_type,
                                          'display_type', a.display_type, 'value', a.value)
                   END ORDER BY a.id)
               FROM metadata_attributes a WHERE a.metadata_id = m.id))::text AS attributes,
           COALESCE(m.properties_json, (
               SELECT json_object_agg(p.name, p.value ORDER BY p.id)
               FROM metadata_properties p WHERE p.metadata_id = m.id))::text AS properties
"""


# Each related row is a LATERAL ... LIMIT 1 so that it is always an index lookup: left to
# itself the planner may merge-join the whole contract-jobs index.
LOOKUP_SQL = f"""
    SELECT c.principal, c.tx_id, c.fungible_token_name,
           cj.status AS contract_status, cj.invalid_reason AS contract_reason,
           t.id AS token_id, t.uri, t.name, t.symbol, t.decimals, t.total_supply, t.updated_at,
           EXTRACT(epoch FROM t.updated_at)::text AS etag,
           tj.id AS token_job_id, tj.status AS token_status, tj.invalid_reason AS token_reason,
           m.id AS metadata_id, m.sip, m.name AS m_name, m.description, m.image,
           m.cached_image, m.cached_thumbnail_image,
           {METADATA_JSON_COLUMNS}
    FROM smart_contracts c
    CROSS JOIN LATERAL (
        SELECT j.status, j.invalid_reason FROM jobs j
        WHERE j.smart_contract_id = c.id AND j.token_id IS NULL LIMIT 1) cj
    LEFT JOIN tokens t
        ON t.smart_contract_id = c.id AND t.token_number = CAST(%(token_number)s AS numeric)
    LEFT JOIN LATERAL (
        SELECT j.id, j.status, j.invalid_reason FROM jobs j
        WHERE j.token_id = t.id AND j.smart_contract_id IS NULL LIMIT 1) tj ON true
    {locale_metadata_lateral("m.*")}
    WHERE c.principal = %(principal)s
"""  # noqa: S608 - composed of constant SQL, values are bound


class RowSource(Protocol):
    """Runs plain SQL with psycopg `%(name)s` placeholders; rows have their columns as
    attributes."""

    def one(self, sql: str, params: Mapping[str, Any]) -> Any:
        """The first row, or None."""

    def all(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        """Every row."""


def get_token(
    source: RowSource, principal: str, token_number: int, locale: str | None = None
) -> TokenView:
    """The token, or the TokenLookupError Hiro's API would answer, in its order."""
    locale = locale or None
    row = source.one(
        LOOKUP_SQL, {"principal": principal, "token_number": token_number, "locale": locale}
    )
    if row is None:
        raise ContractNotFound
    if row.contract_status == JobStatus.INVALID.value:
        raise TokenInvalid(row.contract_reason)
    if row.token_id is None:
        raise TokenNotFound
    if locale is not None and row.metadata_id is None:
        raise LocaleNotFound
    if row.token_job_id is None:
        raise TokenNotFound
    if row.token_status == JobStatus.INVALID.value:
        raise TokenInvalid(row.token_reason)
    in_progress = (JobStatus.PENDING.value, JobStatus.QUEUED.value)
    if row.updated_at is None and row.token_status in in_progress:
        raise MetadataFetchInProgress
    return TokenView(
        uri=row.uri,
        name=row.name,
        symbol=row.symbol,
        decimals=row.decimals,
        total_supply=None if row.total_supply is None else int(row.total_supply),
        metadata=metadata_object(row) if row.metadata_id is not None else None,
        contract_principal=row.principal,
        tx_id=row.tx_id,
        fungible_token_name=row.fungible_token_name,
        etag=row.etag,
    )


def metadata_object(row: Any) -> dict[str, Any]:
    """The `metadata` object of a token answer; a field with no value is omitted
    (docs/reference-differences.md#omitted-fields)."""
    metadata: dict[str, Any] = {"sip": row.sip, "name": row.m_name}
    for key in ("description", "image", "cached_image", "cached_thumbnail_image"):
        value = getattr(row, key)
        if value is not None:
            metadata[key] = value
    if row.attributes:
        metadata["attributes"] = RawJson(row.attributes)
    if row.properties:
        metadata["properties"] = RawJson(row.properties)
    return metadata
