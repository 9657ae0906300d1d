"""A token's metadata rows, replaced in a few set-based statements: the rows, their attributes
and properties, and the answer's JSON kept beside them (docs/token-processing.md#documents).

Plain SQL: the ORM's bulk delete and expanding IN lists cost more CPU than the statements
themselves. Ids travel as one comma-joined string, rows as one JSON array of objects unpacked
by Postgres (docs/sql.md#lists-and-rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.jsonio import dumps_text
from shared.metadata.normalize import attribute_object
from shared.metadata.parse import ParsedMetadata
from shared.sql_params import array_of, joined, json_rows


def replace_metadata(
    session: Session, rows_by_token: Sequence[tuple[int, Sequence[ParsedMetadata]]]
) -> set[int]:
    """Delete the tokens' metadata rows and insert the new ones: four statements at most.
    Returns the tokens whose documents changed (compared by a digest of each row's)."""
    deleted = session.execute(_DELETE_METADATA, {"ids": joined(t for t, _ in rows_by_token)})
    before = _documents(deleted)
    rows = [(token_id, row) for token_id, token_rows in rows_by_token for row in token_rows]
    if not rows:
        return {token_id for token_id, _ in rows_by_token if before.get(token_id)}
    inserted = session.execute(
        _INSERT_METADATA,
        {
            "rows": json_rows(
                {
                    "position": position,
                    "token_id": token_id,
                    "sip": row.sip,
                    "name": row.name,
                    "l10n_locale": row.l10n_locale,
                    "l10n_uri": row.l10n_uri,
                    "l10n_default": row.l10n_default,
                    "description": row.description,
                    "image": row.image,
                    "raw": row.raw,
                    "normalized": row.normalized,
                    "attributes_json": _attributes_json(row),
                    "properties_json": dumps_text(row.properties) if row.properties else None,
                }
                for position, (token_id, row) in enumerate(rows)
            )
        },
    ).all()
    after = _documents(inserted)
    metadata_ids = [row.id for row in inserted]
    pairs = list(zip(metadata_ids, rows, strict=True))
    attributes = [
        {
            "metadata_id": mid,
            "trait_type": a.trait_type,
            "value": dumps_text(a.value),
            "display_type": a.display_type,
        }
        for mid, (_, row) in pairs
        for a in row.attributes
    ]
    if attributes:
        session.execute(_INSERT_ATTRIBUTES, {"rows": json_rows(attributes)})
    properties = [
        {"metadata_id": mid, "name": name, "value": dumps_text(value)}
        for mid, (_, row) in pairs
        for name, value in row.properties.items()
    ]
    if properties:
        session.execute(_INSERT_PROPERTIES, {"rows": json_rows(properties)})
    return {
        token_id for token_id, _ in rows_by_token if before.get(token_id) != after.get(token_id)
    }


def _documents(rows: Iterable[Any]) -> dict[int, set[tuple[str | None, str | None]]]:
    """Each token's (locale, document digest) pairs."""
    documents: dict[int, set[tuple[str | None, str | None]]] = {}
    for row in rows:
        documents.setdefault(row.token_id, set()).add((row.l10n_locale, row.digest))
    return documents


def _attributes_json(row: ParsedMetadata) -> str | None:
    """The answer's `attributes` of a row, stored beside it so that reads need not aggregate."""
    if not row.attributes:
        return None
    return dumps_text(
        [attribute_object(a.trait_type, a.display_type, a.value) for a in row.attributes]
    )


_DIGEST = """md5(COALESCE(CAST(raw AS text),
                          CAST(jsonb_build_array(name, description, image) AS text)))"""
_DELETE_METADATA = text(
    f"""
    DELETE FROM metadata WHERE token_id = ANY({array_of(":ids", "integer")})
    RETURNING token_id, l10n_locale, {_DIGEST} AS digest
    """  # noqa: S608 - composed of constant SQL, values are bound
)
# The new rows' ids come from the sequence in the CTE, which Postgres evaluates once because it
# is read twice: the ids are returned in the order of the rows without relying on the order
# of INSERT ... RETURNING. (SQLAlchemy's executemany with sorted RETURNING cost 7 % of a
# worker's CPU in a profile.)
_INSERT_METADATA = text(
    f"""
    WITH new AS (
        SELECT nextval(pg_get_serial_sequence('metadata', 'id'))::integer AS id, u.*
          FROM jsonb_to_recordset(CAST(:rows AS jsonb))
               AS u(position integer, token_id integer, sip integer, name text,
                    l10n_locale text, l10n_uri text, l10n_default boolean, description text,
                    image text, raw jsonb, normalized jsonb, attributes_json text,
                    properties_json text)
    ), inserted AS (
        INSERT INTO metadata (id, token_id, sip, name, l10n_locale, l10n_uri, l10n_default,
                              description, image, raw, normalized, attributes_json,
                              properties_json)
        SELECT id, token_id, sip, name, l10n_locale, l10n_uri, l10n_default, description, image,
               raw, normalized, CAST(attributes_json AS json), CAST(properties_json AS json)
          FROM new
    )
    SELECT id, token_id, l10n_locale, {_DIGEST} AS digest FROM new ORDER BY position
    """  # noqa: S608 - composed of constant SQL, values are bound
)
_INSERT_ATTRIBUTES = text(
    """
    INSERT INTO metadata_attributes (metadata_id, trait_type, value, display_type)
    SELECT u.metadata_id, u.trait_type, CAST(u.value AS jsonb), u.display_type
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS u(metadata_id integer, trait_type text, value text, display_type text)
    """
)
_INSERT_PROPERTIES = text(
    """
    INSERT INTO metadata_properties (metadata_id, name, value)
    SELECT u.metadata_id, u.name, CAST(u.value AS jsonb)
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS u(metadata_id integer, name text, value text)
    """
)
