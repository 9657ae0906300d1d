"""`GET /search?contract=...`: many tokens in one request, in request order."""

from __future__ import annotations

from flask.testing import FlaskClient
from integration.api.conftest import counted_queries
from support.builders import add_contract, add_metadata, add_token, new_principal

from shared.models import JobStatus, Sip

SEARCH = "/metadata/v1/search"


def search(client: FlaskClient, *identifiers: str, **params: str):
    return client.get(
        SEARCH, query_string=[("contract", i) for i in identifiers] + list(params.items())
    )


def test_finds_tokens_of_every_type_in_request_order(client, db) -> None:
    with db.begin() as s:
        ft = add_contract(s, sip=Sip.SIP_010)
        ft_token = add_token(
            s, ft, name="Coin", symbol="CN", decimals=8, total_supply=10**30, uri="https://c/1"
        )
        add_metadata(
            s,
            ft_token,
            name="Coin",
            description="A coin",
            image="ipfs://coin.png",
            cached_image="https://cdn/coin.png",
            cached_thumbnail_image="https://cdn/coin-t.png",
        )
        nft = add_contract(s, sip=Sip.SIP_009)
        add_token(s, nft, 120, uri="https://n/120.json")
        sft = add_contract(s, sip=Sip.SIP_013)
        add_token(s, sft, 3, decimals=0, total_supply=5)
    response = search(client, f"{nft.principal}:120", ft.principal, f"{sft.principal}:3")
    assert response.status_code == 200
    assert response.json == [
        {
            "contract_id": nft.principal,
            "token_number": 120,
            "token_type": "nft",
            "token_uri": "https://n/120.json",
            "tx_id": "0x123456",
            "sender_address": nft.principal.split(".")[0],
        },
        {
            "contract_id": ft.principal,
            "token_number": 1,
            "token_type": "ft",
            "name": "Coin",
            "symbol": "CN",
            "decimals": 8,
            "total_supply": str(10**30),
            "token_uri": "https://c/1",
            "description": "A coin",
            "image_uri": "https://cdn/coin.png",
            "image_thumbnail_uri": "https://cdn/coin-t.png",
            "image_canonical_uri": "ipfs://coin.png",
            "tx_id": "0x123456",
            "sender_address": ft.principal.split(".")[0],
        },
        {
            "contract_id": sft.principal,
            "token_number": 3,
            "token_type": "sft",
            "decimals": 0,
            "total_supply": "5",
            "tx_id": "0x123456",
            "sender_address": sft.principal.split(".")[0],
        },
    ]
    assert search(client, f"{nft.principal}:120", prefix="x").json == response.json[:1]
    unversioned = client.get(f"/metadata/search?contract={ft.principal}")
    assert unversioned.json == [response.json[1]]


def test_missing_tokens_are_left_out_and_duplicates_answered_once(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, 1)
        add_token(s, contract, 2, job_status=JobStatus.INVALID, invalid_reason=105)
    response = search(
        client,
        f"{contract.principal}:2",
        new_principal(),
        f"{contract.principal}:9",
        contract.principal,
        f"{contract.principal}:1",
        f"{contract.principal}:2",
    )
    assert [(r["contract_id"], r["token_number"]) for r in response.json] == [
        (contract.principal, 2),
        (contract.principal, 1),
    ]
    assert search(client, new_principal()).json == []


def test_locale_picks_the_localized_row_or_leaves_metadata_fields_out(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_010)
        token = add_token(s, contract, name="Coin")
        add_metadata(s, token, name="Coin", locale="en", description="A coin")
        add_metadata(s, token, name="Moneda", locale="es", default=False, description="Una")
    assert search(client, contract.principal, locale="es").json[0]["description"] == "Una"
    assert search(client, contract.principal).json[0]["description"] == "A coin"
    assert "description" not in search(client, contract.principal, locale="fr").json[0]


def test_fifty_identifiers_cost_one_query(client, db, app) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        for number in range(1, 51):
            add_token(s, contract, number)
    identifiers = [f"{contract.principal}:{n}" for n in range(50, 0, -1)]
    with counted_queries(app) as statements:
        response = search(client, *identifiers)
    assert [r["token_number"] for r in response.json] == list(range(50, 0, -1))
    assert len(statements) == 1  # the hits and their ETag together


def test_search_is_revalidated_with_an_etag(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, 1)
    first = search(client, contract.principal, new_principal())
    again = client.get(
        SEARCH,
        query_string={"contract": [contract.principal, new_principal()]},
        headers={"If-None-Match": first.headers["ETag"]},
    )
    assert again.status_code == 304
    with db.begin() as s:
        add_token(s, contract, 2)
    both = client.get(
        SEARCH,
        query_string={"contract": [contract.principal, f"{contract.principal}:2"]},
        headers={"If-None-Match": first.headers["ETag"]},
    )
    assert both.status_code == 200
