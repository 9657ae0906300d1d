"""Collection pages, owners' galleries and batch reads against a real, migrated Postgres
(docs/marketplace-api.md): the token item, keyset paging, the 1 MB stop and the errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from support.builders import add_contract, add_metadata, add_token, new_principal

from shared.models import JobStatus, Metadata, NftOwnership, Sip, SmartContract, Token
from shared.reads import pages
from shared.reads.items import ItemOptions
from shared.reads.pages import _gallery_sql

PREFIX = "/metadata/v1"
OWNER = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
OTHER_OWNER = "SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE"


def own(session: Session, token: Token, owner: str | None, **fields: Any) -> None:
    session.add(
        NftOwnership(
            token_id=token.id,
            smart_contract_id=token.smart_contract_id,
            token_number=token.token_number,
            owner=owner,
            burned=owner is None,
            **fields,
        )
    )
    session.flush()


def collection(db, count: int, owner: str = OWNER) -> SmartContract:  # type: ignore[no-untyped-def]
    with db.begin() as s:
        contract = add_contract(s)
        for n in range(1, count + 1):
            token = add_token(s, contract, n, uri=f"ipfs://doc/{n}")
            add_metadata(s, token, name=f"Ape #{n}", attributes=[("Fur", "gold", None)])
            own(s, token, owner)
        return contract


def page(client, url: str, **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(url, query_string=params)
    assert response.status_code == 200, response.json
    return response.json


def test_a_token_item_has_every_field_of_the_shape(client, db) -> None:
    minted = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, 7, uri="ipfs://doc/7")
        add_metadata(s, token, name="Ape #7", attributes=[("Fur", "gold", None)])
        own(
            s,
            token,
            OWNER,
            mint_address=OTHER_OWNER,
            mint_tx_id="0xabc",
            mint_block_height=42,
            mint_timestamp=minted,
        )
    [item] = page(client, f"{PREFIX}/nft/{contract.principal}")["results"]
    assert item["contract_id"] == contract.principal
    assert (item["token_type"], item["token_id"]) == ("nft", "7")
    assert item["token_id_hex"] == "0x" + "0" * 31 + "7"
    assert (item["owner"], item["burned"]) == (OWNER, False)
    assert item["mint_info"] == {
        "address": OTHER_OWNER,
        "transaction_hash": "0xabc",
        "block_height": 42,
        "timestamp": minted.isoformat(),
    }
    assert item["token_uri"] == "ipfs://doc/7"
    assert item["metadata"]["name"] == "Ape #7"
    assert item["metadata"]["attributes"] == [{"trait_type": "Fur", "value": "gold"}]
    assert item["normalized"]["name"] == "Ape #7"
    assert item["normalized"]["attributes"] == [{"trait_type": "Fur", "value": "gold"}]
    assert item["metadata_updated_at"] is not None
    assert item["awaiting_metadata_update"] is False
    assert "error" not in item
    assert "raw" not in item


def test_a_collection_is_paged_in_token_id_order_without_skips_or_repeats(client, db) -> None:
    contract = collection(db, 25)
    url = f"{PREFIX}/nft/{contract.principal}"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        body = page(client, url, **params)
        assert (body["limit"], body["total"]) == (10, 25)
        seen += [item["token_id"] for item in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(n) for n in range(1, 26)]


def test_tokens_minted_while_paging_are_neither_skipped_nor_repeated(client, db) -> None:
    contract = collection(db, 6)
    url = f"{PREFIX}/nft/{contract.principal}"
    first = page(client, url, limit=3)
    with db.begin() as s:  # minted meanwhile: one before the cursor, two after
        stored = s.get_one(SmartContract, contract.id)
        for n in (0, 9, 10):
            own(s, add_token(s, stored, n), OWNER)
    second = page(client, url, limit=3, cursor=first["next_cursor"])
    third = page(client, url, limit=3, cursor=second["next_cursor"])
    ids = [i["token_id"] for body in (first, second, third) for i in body["results"]]
    assert ids == ["1", "2", "3", "4", "5", "6", "9", "10"]
    assert third["next_cursor"] is None


def test_token_ids_are_an_allow_list_in_decimal_or_hex(client, db) -> None:
    contract = collection(db, 20)
    body = page(client, f"{PREFIX}/nft/{contract.principal}", token_ids=["3", "0x10", "0x3", "99"])
    assert [item["token_id"] for item in body["results"]] == ["3", "16"]
    assert body["total"] == 2


def test_a_page_stops_at_a_megabyte_and_its_cursor_goes_on_from_there(
    client, db, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = collection(db, 5)
    item_size = len(
        client.get(f"{PREFIX}/nft/{contract.principal}", query_string={"limit": 1}).data
    )
    monkeypatch.setattr(pages, "MAX_PAGE_BYTES", item_size * 2)  # room for two items
    body = page(client, f"{PREFIX}/nft/{contract.principal}", limit=5)
    assert len(body["results"]) == 2
    rest = page(client, f"{PREFIX}/nft/{contract.principal}", limit=5, cursor=body["next_cursor"])
    assert [item["token_id"] for item in rest["results"]] == ["3", "4"]


def test_a_big_token_alone_still_makes_a_page(client, db, monkeypatch) -> None:
    contract = collection(db, 2)
    monkeypatch.setattr(pages, "MAX_PAGE_BYTES", 10)
    body = page(client, f"{PREFIX}/nft/{contract.principal}", limit=5)
    assert [item["token_id"] for item in body["results"]] == ["1"]
    assert body["next_cursor"] is not None


def test_unknown_or_other_kind_of_contract_is_404(client, db) -> None:
    with db.begin() as s:
        fungible = add_contract(s, sip=Sip.SIP_010)
    for url in (f"{PREFIX}/nft/{new_principal()}", f"{PREFIX}/nft/{fungible.principal}"):
        response = client.get(url)
        assert (response.status_code, response.json) == (404, {"error": "Contract not found"})


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": "MTIz.4"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"token_ids": "0xZZ"}, "token_ids"),
        ({"token_ids": str(2**128)}, "token_ids"),
        ({"include": "everything"}, "include"),
    ],
)
def test_malformed_page_parameters_are_400_naming_the_field(client, db, params, field) -> None:
    contract = collection(db, 1)
    response = client.get(f"{PREFIX}/nft/{contract.principal}", query_string=params)
    assert response.status_code == 400
    assert f"querystring/{field}" in response.json["message"]


def test_a_cursor_of_a_gallery_is_refused_by_a_collection(client, db) -> None:
    contract = collection(db, 3)
    gallery = page(client, f"{PREFIX}/owners/{OWNER}/nft", limit=1)
    response = client.get(
        f"{PREFIX}/nft/{contract.principal}", query_string={"cursor": gallery["next_cursor"]}
    )
    assert response.status_code == 400


def test_include_raw_adds_the_stored_document(client, db) -> None:
    contract = collection(db, 1)
    document = {"name": "Ape #1", "animation_url": "ipfs://anim", "custom": [1, 2]}
    with db.begin() as s:
        s.execute(
            update(Metadata)
            .where(
                Metadata.token_id.in_(s.query(Token.id).filter_by(smart_contract_id=contract.id))
            )
            .values(raw=document, normalized={"name": "Ape #1", "animation_url": "ipfs://anim"})
        )
    [plain] = page(client, f"{PREFIX}/nft/{contract.principal}")["results"]
    assert "raw" not in plain
    assert plain["normalized"]["animation_url"] == "ipfs://anim"
    [item] = page(client, f"{PREFIX}/nft/{contract.principal}", include="raw")["results"]
    assert item["raw"] == document


def test_locale_picks_the_locales_row_and_falls_back_to_the_default(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        first, second = add_token(s, contract, 1), add_token(s, contract, 2)
        add_metadata(s, first, name="Hello")
        add_metadata(s, first, name="Bonjour", locale="fr", default=False)
        add_metadata(s, second, name="Only default")
    body = page(client, f"{PREFIX}/nft/{contract.principal}", locale="fr")
    assert [item["metadata"]["name"] for item in body["results"]] == ["Bonjour", "Only default"]


def test_pending_and_failed_tokens_say_so(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, 1, job_status=JobStatus.PENDING, processed=False)
        add_token(s, contract, 2, job_status=JobStatus.INVALID, invalid_reason=105)
    first, second = page(client, f"{PREFIX}/nft/{contract.principal}")["results"]
    assert first["awaiting_metadata_update"] is True
    assert (first["metadata"], first["metadata_updated_at"], first["owner"]) == (None, None, None)
    assert second["error"]["code"] == 105
    assert "parse" in second["error"]["message"].lower()


def test_an_sft_collection_carries_supplies(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        add_token(s, contract, 5, decimals=2, total_supply=2**100)
    [item] = page(client, f"{PREFIX}/sft/{contract.principal}")["results"]
    assert (item["token_type"], item["decimals"], item["total_supply"]) == ("sft", 2, str(2**100))
    assert client.get(f"{PREFIX}/nft/{contract.principal}").status_code == 404


def test_an_owners_gallery_spans_contracts_in_order(client, db) -> None:
    first, second = collection(db, 3), collection(db, 2)
    with db.begin() as s:
        stored = s.get_one(SmartContract, first.id)
        own(s, add_token(s, stored, 50), OTHER_OWNER)  # someone else's
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = page(client, f"{PREFIX}/owners/{OWNER}/nft", **params)
        seen += [(item["contract_id"], item["token_id"]) for item in body["results"]]
        if not (cursor := body["next_cursor"]):
            break
    mine = [(first.principal, str(n)) for n in (1, 2, 3)]
    mine += [(second.principal, "1"), (second.principal, "2")]
    assert [pair for pair in seen if pair in mine] == mine
    assert len(seen) == len(set(seen))
    filtered = page(client, f"{PREFIX}/owners/{OWNER}/nft", contract=second.principal)
    assert [i["token_id"] for i in filtered["results"]] == ["1", "2"]
    assert filtered["total"] == 2


def test_a_burned_token_leaves_its_owners_gallery(client, db) -> None:
    owner = "SP1P72Z3704VMT3DMHPP2CB8TGQWGDBHD3RPR9GZS"
    with db.begin() as s:
        contract = add_contract(s)
        own(s, add_token(s, contract, 1), owner)
        own(s, add_token(s, contract, 2), None)
    body = page(client, f"{PREFIX}/owners/{owner}/nft")
    assert ([i["token_id"] for i in body["results"]], body["total"]) == (["1"], 1)
    [_, burned] = page(client, f"{PREFIX}/nft/{contract.principal}")["results"]
    assert (burned["owner"], burned["burned"]) == (None, True)


@pytest.mark.parametrize("query", ["", "?locale=fr", "?include=raw"])
def test_a_batch_answers_in_request_order_with_errors_in_place(client, db, query) -> None:
    contract = collection(db, 3)
    with db.begin() as s:
        fungible = add_contract(s, sip=Sip.SIP_010)
        add_token(s, fungible, 1, name="Coin", symbol="CN", decimals=6, total_supply=10**30)
    unknown = new_principal()
    body = {
        "tokens": [
            {"contract_id": contract.principal, "token_id": "0x3"},
            {"contract_id": fungible.principal},
            {"contract_id": unknown, "token_id": 1},
            {"contract_id": contract.principal, "token_id": 99},
            {"contract_id": contract.principal, "token_id": "1"},
        ]
    }
    response = client.post(f"{PREFIX}/tokens/batch{query}", json=body)
    assert response.status_code == 200
    results = response.json["results"]
    assert results[0]["token_id"] == "3"
    assert (results[1]["token_type"], results[1]["symbol"]) == ("ft", "CN")
    assert results[1]["total_supply"] == str(10**30)
    assert results[2] == {"contract_id": unknown, "token_id": "1", "error": "Contract not found"}
    assert results[3] == {
        "contract_id": contract.principal,
        "token_id": "99",
        "error": "Token not found",
    }
    assert results[4]["token_id"] == "1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "tokens"),
        ({"tokens": []}, "tokens"),
        ({"tokens": [{"token_id": 1}]}, "contract_id"),
        ({"tokens": [{"contract_id": "nope", "token_id": 1}]}, "contract_id"),
        ({"tokens": [{"contract_id": f"{OWNER}.a", "token_id": -1}]}, "token_id"),
        ({"tokens": [{"contract_id": f"{OWNER}.a", "token_id": "0xg"}]}, "token_id"),
        ({"tokens": [{"contract_id": f"{OWNER}.a"}] * 101}, "tokens"),
    ],
)
def test_a_malformed_batch_is_400_naming_the_field(client, body, field) -> None:
    response = client.post(f"{PREFIX}/tokens/batch", json=body)
    assert response.status_code == 400
    assert field in response.json["message"]


def test_a_gallery_page_is_one_range_of_the_owner_index_without_a_sort(db, settings) -> None:
    collection(db, 3)
    params = {
        **ItemOptions().params(),
        "owner": OWNER,
        "after_contract": 1,
        "after_number": 2,
        "contracts": None,
        "limit": 101,
    }
    with psycopg.connect(settings.database_url.replace("+psycopg", "")) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            row[0] for row in conn.execute("EXPLAIN " + _gallery_sql(ItemOptions()), params)
        )
    assert "nft_ownership_owner_contract_token_index" in plan
    assert "ROW(smart_contract_id, token_number) > ROW(" in plan  # the cursor bounds the range
    sort_keys = [line for line in plan.splitlines() if "Sort Key" in line]
    assert not [key for key in sort_keys if "token_number" in key or "smart_contract_id" in key]
