"""Bad input is a 400 naming the parameter, unknown routes a JSON 404, and never a 500."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from support.builders import add_contract, add_token, new_principal

P = new_principal()
BAD_REQUEST = {"statusCode", "code", "error", "message"}


def assert_bad_request(response, field: str) -> None:
    assert response.status_code == 400
    assert set(response.json) == BAD_REQUEST
    assert (response.json["code"], response.json["error"]) == ("FST_ERR_VALIDATION", "Bad Request")
    assert response.json["message"].startswith(field + " "), response.json["message"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/metadata/v1/nft/not-a-principal/1", "params/principal"),
        ("/metadata/v1/ft/SP2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS", "params/principal"),
        ("/metadata/v1/ft/sp2syhr84sdjjdk8m09hfs4kbfxppcx9h7rz9yvts.lower", "params/principal"),
        ("/metadata/v1/sft/SPÅ2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS.x/1", "params/principal"),
        (f"/metadata/v1/nft/{P}%0A/1", "params/principal"),
        (f"/metadata/v1/nft/{P}.x/1", "params/principal"),
        (f"/metadata/v1/nft/{P}/one", "params/token_id"),
        (f"/metadata/nft/{P}/1.5", "params/token_id"),
        (f"/metadata/nft/{P}/1e3", "params/token_id"),
        (f"/metadata/nft/{P}/1_0", "params/token_id"),
        (f"/metadata/nft/{P}/%D9%A1", "params/token_id"),  # an Arabic-Indic digit
        (f"/metadata/nft/{P}/%201", "params/token_id"),
        (f"/metadata/sft/{P}/{'9' * 5000}", "params/token_id"),
        (f"/metadata/v1/nft/{P}/1?locale={'x' * 65}", "querystring/locale"),
        (f"/metadata/v1/ft/{P}?locale=en%00", "querystring/locale"),
        ("/metadata/v1/ft?limit=0", "querystring/limit"),
        ("/metadata/v1/ft?limit=61", "querystring/limit"),
        ("/metadata/v1/ft?limit=ten", "querystring/limit"),
        ("/metadata/v1/ft?offset=-1", "querystring/offset"),
        (f"/metadata/v1/ft?offset={2**63}", "querystring/offset"),
        ("/metadata/v1/ft?order=up", "querystring/order"),
        ("/metadata/v1/ft?order_by=supply", "querystring/order_by"),
        ("/metadata/v1/ft?valid_metadata_only=yes", "querystring/valid_metadata_only"),
        ("/metadata/v1/ft?address=SP12", "querystring/address"),
        ("/metadata/v1/ft?name=a%00b", "querystring/name"),
        ("/metadata/v1/ft?symbol=%00", "querystring/symbol"),
        (f"/metadata/v1/ft?address={P.split('.')[0]}%00", "querystring/address"),
        ("/metadata/v1/search", "querystring/contract"),
        ("/metadata/v1/search?contract=nope", "querystring/contract/0"),
        (f"/metadata/v1/search?contract={P}&contract={P}:x", "querystring/contract/1"),
        (f"/metadata/v1/search?contract={P},{P}", "querystring/contract/0"),
        (f"/metadata/v1/search?contract={P}:%D9%A1", "querystring/contract/0"),
        ("/metadata/v1/search?" + "&".join([f"contract={P}"] * 51), "querystring/contract"),
    ],
)
def test_bad_input_is_400_naming_the_parameter(client: FlaskClient, url: str, field: str):
    assert_bad_request(client.get(url), field)


def test_the_messages_read_as_the_reference_validator_s(client: FlaskClient) -> None:
    assert client.get("/metadata/v1/ft?limit=61").json == {
        "statusCode": 400,
        "code": "FST_ERR_VALIDATION",
        "error": "Bad Request",
        "message": "querystring/limit must be <= 60",
    }
    assert client.get("/metadata/v1/nft/x/1").json["message"] == (
        'params/principal must match pattern "^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{28,41}'
        '\\.[a-zA-Z]([a-zA-Z0-9]|[-_]){0,39}$"'
    )
    assert client.get(f"/metadata/v1/nft/{P}/x").json["message"] == (
        "params/token_id must be integer"
    )


@pytest.mark.parametrize(
    "url",
    [
        f"/metadata/v1/nft/{P}/-1",
        f"/metadata/v1/nft/{P}/0",
        f"/metadata/v1/nft/{P}/{2**128}",
        f"/metadata/v1/sft/{P}/{10**80}",
        f"/metadata/v1/ft/{P}?locale=%F0%9F%A6%84%E2%80%AE",
        f"/metadata/v1/ft/{P}?locale=%FF%FE",
        f"/metadata/v1/search?contract={P}:{10**60}",
        f"/metadata/v1/search?contract={P}:0&locale=%C3%A9",
    ],
)
def test_hostile_but_valid_input_is_answered_plainly(client, url: str) -> None:
    response = client.get(url)
    assert response.status_code in (200, 404), response.json


def test_huge_and_negative_token_numbers_are_just_not_found(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, 2**128 - 1)
    base = f"/metadata/v1/nft/{contract.principal}"
    assert client.get(f"{base}/{2**128 - 1}").status_code == 200
    for number in (2**128, 2**200, -1, -(2**128)):
        response = client.get(f"{base}/{number}")
        assert (response.status_code, response.json) == (404, {"error": "Token not found"})


def test_list_filters_with_odd_characters_find_nothing_quietly(client) -> None:
    for params in (
        {"name": "%_\\'\"; DROP TABLE tokens; --"},
        {"symbol": "🦄"},
        {"name": "\u202e\u0301"},
        {"address": P.split(".")[0] + "%_\\"},
    ):
        response = client.get("/metadata/v1/ft", query_string=params)
        assert (response.status_code, response.json["total"]) == (200, 0)


def test_unknown_query_keys_are_ignored(client) -> None:
    assert client.get("/metadata/v1/ft?color=blue&limit=5").json["limit"] == 5


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/metadata/v1/nope"),
        ("GET", "/"),
        ("GET", "/metadata/v2/ft"),
        ("GET", "/metadata/v1/ft/"),
        ("GET", f"/metadata/v1/ft/{P}/1"),
        ("POST", "/metadata/v1/ft"),
        ("DELETE", f"/metadata/v1/nft/{P}/1"),
    ],
)
def test_unknown_routes_are_a_json_404(client, method: str, url: str) -> None:
    response = client.open(url, method=method)
    assert response.status_code == 404
    path = url.split("?")[0]
    assert response.json == {
        "message": f"Route {method}:{path} not found",
        "error": "Not Found",
        "statusCode": 404,
    }


def test_head_is_answered_as_get_without_a_body(client) -> None:
    response = client.head("/metadata/v1/ft")
    assert (response.status_code, response.get_data()) == (200, b"")
