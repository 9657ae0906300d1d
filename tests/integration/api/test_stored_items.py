"""Stored token items (docs/marketplace-api.md#stored-items): whatever changes a token or its
metadata, through whichever statement, the page serves the item rendered from what is
committed, as the rendering path (`?include=raw`, which renders per request) does."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from sqlalchemy import text
from support.builders import add_contract, add_metadata, add_token

from shared.indexing.metadata_rows import replace_metadata
from shared.metadata.parse import ParsedMetadata
from shared.models import Sip

PREFIX = "/metadata/v1"


def items(client, url: str, **params: Any) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = client.get(url, query_string={"limit": 200, **params})
    assert response.status_code == 200, response.json
    return response.json["results"]


def assert_stored_items_are_rendered_now(client, principal: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    stored = items(client, f"{PREFIX}/nft/{principal}")
    rendered = items(client, f"{PREFIX}/nft/{principal}", include="raw")
    for item in rendered:
        item.pop("raw", None)
    assert stored == rendered
    return stored


def parsed(name: str, image: str | None = None) -> ParsedMetadata:
    document = {"name": name, "image": image, "attributes": [{"trait_type": "Fur", "value": 1}]}
    return ParsedMetadata(
        name=name,
        description=None,
        image=image,
        attributes=[],
        properties={},
        l10n_locale=None,
        l10n_uri=None,
        l10n_default=True,
        raw=document,
        normalized={"name": name, "image": image},
    )


def test_every_kind_of_change_shows_in_the_stored_item(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        tokens = [add_token(s, contract, n, uri=f"ipfs://doc/{n}") for n in range(1, 6)]
        for token in tokens[:4]:
            add_metadata(s, token, name=f"Ape #{token.token_number}", image="ipfs://img")
    ids = [token.id for token in tokens]
    before = assert_stored_items_are_rendered_now(client, contract.principal)
    assert [item["metadata"] and item["metadata"]["name"] for item in before] == [
        "Ape #1",
        "Ape #2",
        "Ape #3",
        "Ape #4",
        None,
    ]

    with db.begin() as s:
        s.execute(text("UPDATE tokens SET uri = 'ipfs://moved' WHERE id = :id"), {"id": ids[0]})
        s.execute(
            text("UPDATE metadata SET cached_image = 'https://cdn/2.png' WHERE token_id = :id"),
            {"id": ids[1]},
        )
        s.execute(text("DELETE FROM metadata WHERE token_id = :id"), {"id": ids[2]})
        replace_metadata(s, [(ids[3], [parsed("Renamed", "ipfs://new")])])
        replace_metadata(s, [(ids[4], [parsed("First document")])])
        s.execute(
            text(
                'UPDATE metadata SET properties_json = \'{"rarity": "rare"}\' WHERE token_id = :id'
            ),
            {"id": ids[1]},
        )
        later = add_token(s, contract, 6, uri="ipfs://doc/6")
    after = assert_stored_items_are_rendered_now(client, contract.principal)

    assert after[0]["token_uri"] == "ipfs://moved"
    assert after[1]["metadata"]["cached_image"] == after[1]["cached_image"] == "https://cdn/2.png"
    assert after[1]["metadata"]["properties"] == {"rarity": "rare"}
    assert after[2]["metadata"] is None
    assert after[3]["metadata"]["name"] == "Renamed"
    assert after[3]["normalized"] == {"name": "Renamed", "image": "ipfs://new"}
    assert after[4]["metadata"]["name"] == "First document"
    assert after[5]["token_id"] == str(later.token_number)


def test_a_fungible_token_item_follows_its_supply(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_010)
        token = add_token(s, contract, 1, name="Coin", symbol="CN", decimals=6, total_supply=10)
    with db.begin() as s:
        s.execute(
            text("UPDATE tokens SET total_supply = :supply WHERE id = :id"),
            {"id": token.id, "supply": 2**100},
        )
    body = {"tokens": [{"contract_id": contract.principal}]}
    [item] = client.post(f"{PREFIX}/tokens/batch", json=body).json["results"]
    assert (item["name"], item["symbol"], item["decimals"]) == ("Coin", "CN", 6)
    assert item["total_supply"] == str(2**100)


def test_two_transactions_changing_one_token_both_show(client, db, settings) -> None:
    """The monitor changes a token row while an image job changes its metadata row, and each
    renders the item before the other commits: the second waits for the first's item row,
    then renders with what the first committed."""
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, 1, uri="ipfs://old")
        add_metadata(s, token, name="Ape")
    url = settings.database_url.replace("+psycopg", "")
    first = psycopg.connect(url)
    second = psycopg.connect(url)
    try:
        first.execute("UPDATE tokens SET uri = 'ipfs://new' WHERE id = %s", (token.id,))
        # Render now, as a commit would, and keep the item row until the commit.
        first.execute("SET CONSTRAINTS ALL IMMEDIATE")
        waiter_pid = second.info.backend_pid

        def cache_image() -> None:
            second.execute(
                "UPDATE metadata SET cached_image = 'https://cdn/1.png' WHERE token_id = %s",
                (token.id,),
            )
            second.commit()

        worker = threading.Thread(target=cache_image)
        worker.start()
        deadline = time.monotonic() + 10
        while not _waits_for_a_lock(first, waiter_pid):
            assert time.monotonic() < deadline, "the second transaction never waited"
        first.commit()
        worker.join(10)
        assert not worker.is_alive()
    finally:
        first.close()
        second.close()
    [item] = assert_stored_items_are_rendered_now(client, contract.principal)
    assert (item["token_uri"], item["cached_image"]) == ("ipfs://new", "https://cdn/1.png")


def _waits_for_a_lock(conn: psycopg.Connection[Any], pid: int) -> bool:
    row = conn.execute(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
    ).fetchone()
    return row is not None and row[0] == "Lock"


def test_a_collection_total_follows_the_tokens_added_and_deleted(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        other = add_contract(s)
        for n in range(1, 4):
            add_token(s, contract, n)
            add_token(s, other, n)
    url = f"{PREFIX}/nft/{contract.principal}"
    assert client.get(url).json["total"] == 3
    with db.begin() as s:
        s.execute(
            text(
                "INSERT INTO tokens (smart_contract_id, type, token_number, block_height,"
                " index_block_hash, tx_id, tx_index)"
                " SELECT :id, 'nft', n, 1, '0x01', '0x02', 0 FROM generate_series(4, 10) n"
            ),
            {"id": contract.id},
        )
    assert client.get(url).json["total"] == 10
    with db.begin() as s:  # a re-org deletes the tokens of orphaned blocks
        s.execute(
            text("DELETE FROM tokens WHERE smart_contract_id IN (:a, :b) AND token_number > 2"),
            {"a": contract.id, "b": other.id},
        )
    assert client.get(url).json["total"] == 2
    assert client.get(f"{PREFIX}/nft/{other.principal}").json["total"] == 2
    assert len(items(client, url)) == 2
