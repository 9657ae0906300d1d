"""A metadata row's attributes and properties read as stored JSON (written by the worker) and,
for rows stored before that, aggregated from their tables: the answers are the same."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_metadata, add_token

from api.db import RawReads
from shared.db import make_engine, session_scope
from shared.indexing.tokens import TokenData, load_token, store_tokens_data
from shared.jsonio import dumps
from shared.metadata.parse import ParsedAttribute, ParsedMetadata
from shared.models import Metadata
from shared.reads.tokens import get_token

ATTRIBUTES = [("Fur", "gold", None), ("Level", 7, "number"), ("Tags", ["a", None, 1.5], None)]
PROPERTIES = {"collection": "Apes", "rare": False, "nested": {"x": [1, 2]}}


def parsed() -> ParsedMetadata:
    return ParsedMetadata(
        name="Ape #1",
        description=None,
        image="ipfs://ape/1.png",
        attributes=[ParsedAttribute(t, v, d) for t, v, d in ATTRIBUTES],
        properties=dict(PROPERTIES),
        l10n_locale=None,
        l10n_uri=None,
        l10n_default=True,
    )


def test_stored_and_aggregated_rows_answer_the_same(sessions: sessionmaker[Session], settings):
    with session_scope(sessions) as s:
        contract = add_contract(s)
        stored = add_token(s, contract, 1)
        old = add_token(s, contract, 2)
        add_metadata(
            s,
            old,
            name="Ape #1",
            image="ipfs://ape/1.png",
            attributes=ATTRIBUTES,
            properties=PROPERTIES,
        )
        ref = load_token(s, stored.id)
        assert ref is not None
        store_tokens_data(s, [(ref, TokenData(metadata=[parsed()]))], cache_images=False)
        principal = contract.principal
    with session_scope(sessions) as s:
        row = s.scalars(select(Metadata).where(Metadata.token_id == stored.id)).one()
        assert row.attributes_json == [
            {"trait_type": "Fur", "value": "gold"},
            {"trait_type": "Level", "display_type": "number", "value": 7},
            {"trait_type": "Tags", "value": ["a", None, 1.5]},
        ]
        assert row.properties_json == PROPERTIES
    reads = RawReads(make_engine(settings.database_url, pool_size=1))
    try:
        answers = [get_token(reads, principal, number).metadata for number in (1, 2)]
    finally:
        reads.close()
    as_json = [dumps(answer) for answer in answers]
    assert json.loads(as_json[0]) == json.loads(as_json[1])
    assert json.loads(as_json[0])["attributes"][1] == {
        "trait_type": "Level",
        "display_type": "number",
        "value": 7,
    }
