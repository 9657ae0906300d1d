"""Fill a fresh database with a realistic index for benchmarks: `python bench/api/seed.py`.

Creates (or re-creates) the database, migrates it with Alembic and inserts, with
generate_series, FT contracts with one token each and NFT collections of equal size, every
token processed with a default-locale metadata row (NFTs with two attributes, a property,
normalized fields, and the attributes' and properties' JSON as workers store it), one `done`
job per contract and per token, and every NFT owned (owners of about 200 tokens each) with
its mint.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402 - after the path set-up above
from alembic.config import Config  # noqa: E402

from shared.c32 import c32_address  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tm_bench_api"

STEPS = [
    (
        "contracts",
        """
        INSERT INTO smart_contracts (principal, sip, fungible_token_name, non_fungible_token_name,
                                     block_height, index_block_hash, tx_id, tx_index)
        SELECT d.address || CASE WHEN g <= :fts THEN '.ft-token-' ELSE '.collection-' END || g,
               CASE WHEN g <= :fts THEN 'sip-010' ELSE 'sip-009' END::sip_number,
               CASE WHEN g <= :fts THEN 'ft-' || g END,
               CASE WHEN g > :fts THEN 'nft-' || g END,
               g, '0x' || md5('block' || g), '0x' || md5('tx' || g) || md5('tx2' || g), 0
        FROM generate_series(1, :fts + :collections) g
        JOIN unnest(CAST(:deployers AS text[])) WITH ORDINALITY d(address, n)
          ON d.n = 1 + g % cardinality(CAST(:deployers AS text[]))
        """,
    ),
    (
        "fungible tokens",
        """
        INSERT INTO tokens (smart_contract_id, type, token_number, uri, name, symbol, decimals,
                            total_supply, block_height, index_block_hash, tx_id, tx_index,
                            updated_at)
        SELECT c.id, 'ft', 1, 'https://tokens.example/' || c.id || '.json',
               initcap(substr(md5('n' || c.id), 1, 3 + c.id % 7)) || ' '
                 || substr(md5('m' || c.id), 1, 5) || ' token',
               upper(substr(md5('s' || c.id), 1, 3 + c.id % 3)), c.id % 9,
               c.id::numeric * 1000003 * 1000000, c.block_height, c.index_block_hash,
               c.tx_id, 0, now()
        FROM smart_contracts c WHERE c.sip = 'sip-010'
        """,
    ),
    (
        "non-fungible tokens",
        """
        INSERT INTO tokens (smart_contract_id, type, token_number, uri, block_height,
                            index_block_hash, tx_id, tx_index, updated_at)
        SELECT c.id, 'nft', n, 'https://nft.example/' || c.id || '/' || n || '.json',
               c.block_height, c.index_block_hash, c.tx_id, 0, now()
        FROM smart_contracts c CROSS JOIN generate_series(1, :per_collection) n
        WHERE c.sip = 'sip-009'
        """,
    ),
    (
        "jobs",
        """
        INSERT INTO jobs (smart_contract_id, status, updated_at)
        SELECT id, 'done', now() FROM smart_contracts;
        INSERT INTO jobs (token_id, status, updated_at) SELECT id, 'done', now() FROM tokens
        """,
    ),
    (
        "metadata",
        """
        INSERT INTO metadata (token_id, sip, name, l10n_default, description, image,
                              cached_image, cached_thumbnail_image, normalized)
        SELECT t.id, 16, coalesce(t.name, 'Item #' || t.token_number), true,
               'Description of token ' || t.id, 'ipfs://image/' || t.id || '.png',
               'https://cdn.example/' || t.id || '.png',
               'https://cdn.example/' || t.id || '-thumb.png',
               jsonb_build_object(
                   'name', coalesce(t.name, 'Item #' || t.token_number),
                   'description', 'Description of token ' || t.id,
                   'image', 'ipfs://image/' || t.id || '.png', 'image_data', NULL,
                   'external_url', 'https://nft.example/' || t.id, 'animation_url', NULL,
                   'background_color', NULL, 'youtube_url', NULL, 'image_mime_type', NULL,
                   'animation_mime_type', NULL,
                   'attributes', jsonb_build_array(
                       jsonb_build_object('trait_type', 'level', 'value', t.id % 97,
                                          'display_type', 'number'),
                       jsonb_build_object('trait_type', 'background', 'value', t.id % 97)),
                   'properties', jsonb_build_object(
                       'collection', 'Collection ' || t.smart_contract_id))
        FROM tokens t WHERE t.type = 'nft' OR t.id % 4 <> 0
        """,
    ),
    (
        "attributes and properties",
        """
        INSERT INTO metadata_attributes (metadata_id, trait_type, value, display_type)
        SELECT m.id, a.trait, to_jsonb(m.id % 97), a.display
        FROM metadata m JOIN tokens t ON t.id = m.token_id AND t.type = 'nft'
        CROSS JOIN (VALUES ('level', 'number'), ('background', NULL)) a(trait, display);
        INSERT INTO metadata_properties (metadata_id, name, value)
        SELECT m.id, 'collection', to_jsonb('Collection ' || t.smart_contract_id)
        FROM metadata m JOIN tokens t ON t.id = m.token_id AND t.type = 'nft';
        UPDATE metadata m SET
          attributes_json = json_build_array(
              json_build_object('trait_type', 'level', 'display_type', 'number',
                                'value', m.id % 97),
              json_build_object('trait_type', 'background', 'value', m.id % 97)),
          properties_json = json_build_object('collection', 'Collection ' || t.smart_contract_id)
        FROM tokens t WHERE t.id = m.token_id AND t.type = 'nft'
        """,
    ),
    (
        "owners and mints",
        """
        INSERT INTO nft_ownership (token_id, smart_contract_id, token_number, owner, burned,
                                   mint_address, mint_tx_id, mint_block_height, mint_timestamp)
        SELECT t.id, t.smart_contract_id, t.token_number,
               o.address, false, split_part(c.principal, '.', 1),
               '0x' || md5('mint' || t.id) || md5('mint2' || t.id), c.block_height + 1,
               timestamptz '2024-01-01' + c.block_height * interval '10 minutes'
        FROM tokens t JOIN smart_contracts c ON c.id = t.smart_contract_id
        JOIN unnest(CAST(:owners AS text[])) WITH ORDINALITY o(address, n)
          ON o.n = 1 + t.id % cardinality(CAST(:owners AS text[]))
        WHERE t.type = 'nft'
        """,
    ),
    (
        "chain tip and statistics",
        """
        UPDATE chain_tip SET block_height = 150000, index_block_hash = '0x' || md5('tip')
        """,
    ),
]


def recreate(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")


def seed(url: str, fts: int, collections: int, per_collection: int) -> None:
    deployers = [
        c32_address(22, hashlib.sha256(f"bench-{i}".encode()).digest()[:20]) for i in range(50)
    ]
    # Owners of about 200 tokens each across collections: an owner's gallery is two pages.
    owners = [
        c32_address(22, hashlib.sha256(f"owner-{i}".encode()).digest()[:20])
        for i in range(max(1, collections * per_collection // 200))
    ]
    params = {
        "owners": owners,
        "fts": fts,
        "collections": collections,
        "per_collection": per_collection,
        "deployers": deployers,
    }
    engine = create_engine(url)
    for name, sql in STEPS:
        started = time.monotonic()
        with engine.begin() as conn:
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(text(statement), params)
        print(f"{name}: {time.monotonic() - started:.1f}s", flush=True)
    # What autovacuum does to a database in use: statistics, and the visibility map that lets
    # a count read the index alone (without it, a 10,000-token count visits every heap page).
    started = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"vacuum and statistics: {time.monotonic() - started:.1f}s", flush=True)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--fts", type=int, default=10_000)
    parser.add_argument("--collections", type=int, default=99)
    parser.add_argument("--per-collection", type=int, default=10_000)
    args = parser.parse_args()
    if make_url(args.database_url).host not in ("127.0.0.1", "localhost"):
        parser.error("benchmarks only ever target a database on 127.0.0.1")
    recreate(args.database_url)
    seed(args.database_url, args.fts, args.collections, args.per_collection)


if __name__ == "__main__":
    main()
