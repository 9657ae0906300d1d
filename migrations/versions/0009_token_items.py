"""Token items kept ready: each token's marketplace item JSON, rendered when it changes, and
each collection's token count, moved when tokens come and go.

A 100-item page built its items per request, from four rows per token (token, owner, job,
metadata with its documents): about 6 ms of CPU, so two cores served some 340 pages a second.
Now Postgres renders the part of an item that changes only when the token or its metadata
changes into `token_items.body`, when the transaction that changes them commits
(statement-level triggers on `tokens` and `metadata` note the tokens; a deferred trigger renders them in one set-based statement), and a page reads one
index range of ready JSON. The owner, mint and job fields,
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


# A row's attributes and properties as the answer's JSON: stored by the workers since revision
# 0007; the rows stored before it get theirs below, from their tables.
_ATTRIBUTES = "m.attributes_json::text"
_PROPERTIES = "m.properties_json::text"
BACKFILL_DOCUMENT_JSON = """
UPDATE metadata m SET attributes_json = a.json
FROM (SELECT metadata_id, json_agg(CASE WHEN display_type IS NULL
          THEN json_build_object('trait_type', trait_type, 'value', value)
          ELSE json_build_object('trait_type', trait_type, 'display_type', display_type,
                                 'value', value) END ORDER BY id) AS json
      FROM metadata_attributes GROUP BY metadata_id) a
WHERE m.id = a.metadata_id AND m.attributes_json IS NULL;
UPDATE metadata m SET properties_json = p.json
FROM (SELECT metadata_id, json_object_agg(name, value ORDER BY id) AS json
      FROM metadata_properties GROUP BY metadata_id) p
WHERE m.id = p.metadata_id AND m.properties_json IS NULL;
"""
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

# Renders the items of these tokens (with their default metadata rows) in one statement, after
# taking their item rows: a transaction still writing one of them is waited for, and the
# INSERT, a statement of its own, then reads with a snapshot that holds what it committed.
# Two transactions changing different rows of one token (the monitor its supply, an image job
# its cached image) therefore never leave an item without the other's change.
RENDER_FUNCTION = """
CREATE FUNCTION render_token_items(ids integer[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM token_items WHERE token_id = ANY(ids) ORDER BY token_id FOR UPDATE;
    INSERT INTO token_items (token_id, smart_contract_id, token_number, body)
    SELECT t.id, t.smart_contract_id, t.token_number, token_item_json(t, c.principal, shown.m)
    FROM (SELECT DISTINCT id FROM unnest(ids) AS ids(id)) wanted
    JOIN tokens t ON t.id = wanted.id
    JOIN smart_contracts c ON c.id = t.smart_contract_id
    LEFT JOIN LATERAL (
        SELECT m FROM metadata m WHERE m.token_id = t.id AND m.l10n_default
        ORDER BY m.id LIMIT 1
    ) shown ON true
    ORDER BY t.id
    ON CONFLICT (token_id) DO UPDATE
       SET smart_contract_id = EXCLUDED.smart_contract_id,
           token_number = EXCLUDED.token_number,
           body = EXCLUDED.body;
END $$
"""

# A statement that changes a token or its metadata only notes the token, in
# `token_items_dirty` under its transaction's id; the transaction renders what it noted once,
# when it commits (a deferred constraint trigger; the first of its events renders them all, the
# others see the transaction's mark and return). A token job changes a token in four or five
# statements: rendering at each cost as much as the job itself.
TRIGGER_FUNCTIONS = """
CREATE FUNCTION note_dirty_items(ids integer[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO token_items_dirty (token_id)
    SELECT DISTINCT id FROM unnest(ids) AS ids(id) WHERE id IS NOT NULL
    ON CONFLICT DO NOTHING;
    PERFORM set_config('token_metadata.items_rendered', '', true);
END $$;
CREATE FUNCTION token_items_of_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM note_dirty_items(ARRAY(SELECT id FROM changed));
    RETURN NULL;
END $$;
CREATE FUNCTION token_items_of_metadata() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM note_dirty_items(ARRAY(SELECT token_id FROM changed));
    RETURN NULL;
END $$;
CREATE FUNCTION render_dirty_items() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids integer[];
BEGIN
    IF current_setting('token_metadata.items_rendered', true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('token_metadata.items_rendered', 'yes', true);
    WITH noted AS (
        DELETE FROM token_items_dirty WHERE xact = txid_current() RETURNING token_id
    )
    SELECT array_agg(token_id) INTO ids FROM noted;
    IF ids IS NOT NULL THEN
        PERFORM render_token_items(ids);
    END IF;
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
    _run(
        """
        CREATE UNLOGGED TABLE token_items_dirty (
            xact bigint NOT NULL DEFAULT txid_current(),
            token_id integer NOT NULL,
            PRIMARY KEY (xact, token_id)
        )
        """
    )
    _run(BACKFILL_DOCUMENT_JSON)
    _run(ITEM_FUNCTION)
    _run(RENDER_FUNCTION)
    _run(TRIGGER_FUNCTIONS)
    _run(
        "CREATE CONSTRAINT TRIGGER token_items_render_at_commit AFTER INSERT"
        " ON token_items_dirty DEFERRABLE INITIALLY DEFERRED"
        " FOR EACH ROW EXECUTE FUNCTION render_dirty_items()"
    )
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
    _run("DROP TRIGGER token_items_render_at_commit ON token_items_dirty")
    _run("DROP FUNCTION render_dirty_items()")
    _run("DROP FUNCTION token_items_of_metadata()")
    _run("DROP FUNCTION token_items_of_tokens()")
    _run("DROP FUNCTION render_token_items(integer[])")
    _run("DROP FUNCTION note_dirty_items(integer[])")
    _run("DROP TABLE token_items_dirty")
    _run("DROP FUNCTION token_item_json(tokens, text, metadata)")
    _run("DROP TABLE token_items")
