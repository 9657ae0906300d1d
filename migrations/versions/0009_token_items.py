"""Token items kept ready: each token's marketplace item JSON, rendered when it changes, and
each collection's token count, moved when tokens come and go.

A 100-item page built its items per request, from four rows per token (token, owner, job,
metadata with its documents): about 6 ms of CPU, so two cores served some 340 pages a second.
Now Postgres renders the part of an item that changes only when the token or its metadata
changes into `token_items.body`, in the statement that changes them (statement-level triggers
on `tokens`, `metadata` and its attributes and properties, set-based, so a 10,000-token refresh renders 10,000 items in one
statement), and a page reads one index range of ready JSON. The owner, mint and job fields,
which change on their own, are added when read (docs/marketplace-api.md#stored-items).

`token_item_json(token, principal, metadata row)` is the one definition of that part: the
triggers call it with the default metadata row, the routes with a `?locale=` row. Changing the
item's shape means a migration that replaces it and renders every item again.

`token_counts` replaces counting a collection's tokens for its pages' `total` (an index scan
of 10,000 entries; the API kept each count 5 s, and the counts of a hundred collections then
expired together, every 5 s, in a burst that showed in the pages' p99).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 06:10:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A field's JSON text, `null` when NULL; a `,"key":value` piece, or nothing when NULL.
_HEX_WORDS = " || ".join(
    f"lpad(to_hex(mod(div(t.token_number, {2 ** (32 * word)}), 4294967296)::bigint), 8, '0')"
    for word in (3, 2, 1, 0)
)


def _optional(key: str, expression: str) -> str:
    return f"""CASE WHEN {expression} IS NOT NULL THEN ',"{key}":' || to_json({expression}) END"""


_ATTRIBUTES = """COALESCE(m.attributes_json, (
    SELECT json_agg(CASE WHEN a.display_type IS NULL
        THEN json_build_object('trait_type', a.trait_type, 'value', a.value)
        ELSE json_build_object('trait_type', a.trait_type, 'display_type', a.display_type,
                               'value', a.value) END ORDER BY a.id)
    FROM metadata_attributes a WHERE a.metadata_id = m.id))::text"""
_PROPERTIES = """COALESCE(m.properties_json, (
    SELECT json_object_agg(p.name, p.value ORDER BY p.id)
    FROM metadata_properties p WHERE p.metadata_id = m.id))::text"""
# The detail routes' `metadata` object: a field with no value is left out.
_METADATA = f"""concat('{{"sip":', m.sip, ',"name":', COALESCE(to_json(m.name)::text, 'null'),
    {_optional("description", "m.description")}, {_optional("image", "m.image")},
    {_optional("cached_image", "m.cached_image")},
    {_optional("cached_thumbnail_image", "m.cached_thumbnail_image")},
    ',"attributes":' || {_ATTRIBUTES}, ',"properties":' || {_PROPERTIES}, '}}')"""
# A row stored before documents were kept (revision 0006) has no normalized fields: those of
# the row itself stand in.
_NORMALIZED = f"""COALESCE(m.normalized::text, json_build_object(
    'name', m.name, 'description', m.description, 'image', m.image, 'image_data', NULL,
    'external_url', NULL, 'animation_url', NULL, 'background_color', NULL, 'youtube_url', NULL,
    'attributes', COALESCE({_ATTRIBUTES}, '[]')::json,
    'properties', COALESCE({_PROPERTIES}, '{{}}')::json,
    'image_mime_type', NULL, 'animation_mime_type', NULL)::text)"""
_NO_DOCUMENT = (
    '{"name":null,"description":null,"image":null,"image_data":null,"external_url":null,'
    '"animation_url":null,"background_color":null,"youtube_url":null,"image_mime_type":null,'
    '"animation_mime_type":null,"attributes":[],"properties":{}}'
)

ITEM_FUNCTION = f"""
CREATE FUNCTION token_item_json(t tokens, principal text, m metadata) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT concat(
    '{{"contract_id":', to_json(principal), ',"token_type":"', t.type::text,
    '","token_id":"', t.token_number::text, '","token_id_hex":"0x', {_HEX_WORDS},
    '","token_uri":', COALESCE(to_json(t.uri)::text, 'null'),
    ',"metadata":', CASE WHEN m.id IS NULL THEN 'null' ELSE {_METADATA} END,
    ',"normalized":', CASE WHEN m.id IS NULL THEN '{_NO_DOCUMENT}' ELSE {_NORMALIZED} END,
    ',"metadata_updated_at":', COALESCE(to_json(t.updated_at)::text, 'null'),
    {_optional("cached_image", "m.cached_image")},
    {_optional("cached_thumbnail_image", "m.cached_thumbnail_image")},
    CASE WHEN t.type = 'ft' THEN ',"name":' || COALESCE(to_json(t.name)::text, 'null')
                              || ',"symbol":' || COALESCE(to_json(t.symbol)::text, 'null') END,
    CASE WHEN t.type IN ('ft', 'sft')
         THEN ',"decimals":' || COALESCE(t.decimals::text, 'null') || ',"total_supply":'
              || COALESCE('"' || t.total_supply::text || '"', 'null') END,
    '}}')
$$
"""

# A token's item from what is committed now: a VOLATILE function reads with a snapshot of its
# own. Two transactions changing different rows of one token (the monitor its supply, an image
# job its cached image) would otherwise each render without the other's change, and the
# second to write would keep its stale item; the one that waited for the other's item row
# renders again here, seeing what the first committed.
FRESH_ITEM_FUNCTION = """
CREATE FUNCTION token_item_now(token integer) RETURNS text LANGUAGE sql VOLATILE AS $$
SELECT token_item_json(t, c.principal, (
           SELECT m FROM metadata m
           WHERE m.token_id = t.id AND m.l10n_default ORDER BY m.id LIMIT 1))
FROM tokens t JOIN smart_contracts c ON c.id = t.smart_contract_id
WHERE t.id = token
$$
"""

# Renders the items of these tokens (with their default metadata rows) in one statement.
RENDER_FUNCTION = """
CREATE FUNCTION render_token_items(ids integer[]) RETURNS void LANGUAGE sql AS $$
INSERT INTO token_items (token_id, smart_contract_id, token_number, body)
SELECT t.id, t.smart_contract_id, t.token_number, token_item_json(t, c.principal, shown.m)
FROM (SELECT DISTINCT id FROM unnest(ids) AS ids(id)) wanted
JOIN tokens t ON t.id = wanted.id
JOIN smart_contracts c ON c.id = t.smart_contract_id
LEFT JOIN LATERAL (
    SELECT m FROM metadata m WHERE m.token_id = t.id AND m.l10n_default ORDER BY m.id LIMIT 1
) shown ON true
ORDER BY t.id
ON CONFLICT (token_id) DO UPDATE
   SET smart_contract_id = EXCLUDED.smart_contract_id,
       token_number = EXCLUDED.token_number,
       body = COALESCE(token_item_now(EXCLUDED.token_id), EXCLUDED.body)
$$
"""

TRIGGER_FUNCTIONS = """
CREATE FUNCTION token_items_of_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM render_token_items(ARRAY(SELECT id FROM changed));
    RETURN NULL;
END $$;
CREATE FUNCTION token_items_of_metadata() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM render_token_items(ARRAY(SELECT DISTINCT token_id FROM changed));
    RETURN NULL;
END $$;
CREATE FUNCTION token_items_of_metadata_parts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM render_token_items(ARRAY(
        SELECT DISTINCT m.token_id FROM changed JOIN metadata m ON m.id = changed.metadata_id));
    RETURN NULL;
END $$;
"""

# Each collection's token count, moved by the statements that add or delete its tokens, in
# contract order so that two transactions never wait for each other's counts in a cycle.
COUNT_FUNCTIONS = """
CREATE FUNCTION token_counts_of_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO token_counts (smart_contract_id, tokens)
    SELECT smart_contract_id, count(*) FROM changed GROUP BY 1 ORDER BY 1
    ON CONFLICT (smart_contract_id) DO UPDATE SET tokens = token_counts.tokens + EXCLUDED.tokens;
    RETURN NULL;
END $$;
CREATE FUNCTION token_counts_of_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE token_counts SET tokens = token_counts.tokens - gone.tokens
    FROM (SELECT smart_contract_id, count(*) AS tokens FROM changed GROUP BY 1 ORDER BY 1) gone
    WHERE token_counts.smart_contract_id = gone.smart_contract_id;
    RETURN NULL;
END $$;
"""
COUNT_TRIGGERS = (
    ("token_counts_on_token_insert", "INSERT", "NEW", "token_counts_of_added"),
    ("token_counts_on_token_delete", "DELETE", "OLD", "token_counts_of_deleted"),
)

# (trigger, table, event, transition table, function)
TRIGGERS = [
    (f"token_items_on_{name}_{event.lower()}", table, event, transition, function)
    for name, table, function in (
        ("token", "tokens", "token_items_of_tokens"),
        ("metadata", "metadata", "token_items_of_metadata"),
        ("attributes", "metadata_attributes", "token_items_of_metadata_parts"),
        ("properties", "metadata_properties", "token_items_of_metadata_parts"),
    )
    for event, transition in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
    if (table, event) != ("tokens", "DELETE")  # its item goes with it (ON DELETE CASCADE)
]


def _run(sql: str) -> None:
    """As written: the item's JSON is full of `:` that a bound statement would take for
    parameters."""
    op.get_bind().exec_driver_sql(sql)


def upgrade() -> None:
    """Upgrade schema."""
    _run(
        """
        CREATE TABLE token_items (
            token_id integer PRIMARY KEY REFERENCES tokens (id) ON DELETE CASCADE,
            smart_contract_id integer NOT NULL,
            token_number numeric NOT NULL,
            body text NOT NULL
        )
        """
    )
    _run(ITEM_FUNCTION)
    _run(FRESH_ITEM_FUNCTION)
    _run(RENDER_FUNCTION)
    _run(TRIGGER_FUNCTIONS)
    _run("SELECT render_token_items(ARRAY(SELECT id FROM tokens))")
    _run(
        "CREATE UNIQUE INDEX token_items_contract_number_index "
        "ON token_items (smart_contract_id, token_number)"
    )
    _run(
        """
        CREATE TABLE token_counts (
            smart_contract_id integer PRIMARY KEY
                REFERENCES smart_contracts (id) ON DELETE CASCADE,
            tokens bigint NOT NULL
        )
        """
    )
    _run(COUNT_FUNCTIONS)
    _run("INSERT INTO token_counts SELECT smart_contract_id, count(*) FROM tokens GROUP BY 1")
    triggers = TRIGGERS + [(n, "tokens", e, t, f) for n, e, t, f in COUNT_TRIGGERS]
    for name, table, event, transition, function in triggers:
        _run(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} "
            f"REFERENCING {transition} TABLE AS changed "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    """Downgrade schema."""
    for name, table, *_ in TRIGGERS:
        _run(f"DROP TRIGGER {name} ON {table}")
    for name, *_ in COUNT_TRIGGERS:
        _run(f"DROP TRIGGER {name} ON tokens")
    _run("DROP FUNCTION token_counts_of_deleted()")
    _run("DROP FUNCTION token_counts_of_added()")
    _run("DROP TABLE token_counts")
    _run("DROP FUNCTION token_items_of_metadata_parts()")
    _run("DROP FUNCTION token_items_of_metadata()")
    _run("DROP FUNCTION token_items_of_tokens()")
    _run("DROP FUNCTION render_token_items(integer[])")
    _run("DROP FUNCTION token_item_now(integer)")
    _run("DROP FUNCTION token_item_json(tokens, text, metadata)")
    _run("DROP TABLE token_items")
