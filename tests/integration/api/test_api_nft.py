"""The NFT route against a real, migrated Postgres: Hiro's API's answers and error order."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from support.builders import add_contract, add_metadata, add_token, new_principal

from shared.models import JobStatus


def nft_url(principal: str, token_id: int | str = 1, prefix: str = "/metadata/v1") -> str:
    return f"{prefix}/nft/{principal}/{token_id}"


def test_unknown_contract_is_404_contract_not_found(client: FlaskClient) -> None:
    response = client.get(nft_url(new_principal()))
    assert response.status_code == 404
    assert response.json == {"error": "Contract not found"}


def test_contract_without_tokens_is_404_token_not_found(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
    response = client.get(nft_url(contract.principal))
    assert response.status_code == 404
    assert response.json == {"error": "Token not found"}


def test_token_zero_is_never_found(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, 1)
    assert client.get(nft_url(contract.principal, 0)).json == {"error": "Token not found"}
    assert client.get(nft_url(contract.principal, -1)).status_code == 404


def test_unprocessed_token_is_422_fetch_in_progress(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, job_status=JobStatus.PENDING, processed=False)
    response = client.get(nft_url(contract.principal))
    assert response.status_code == 422
    assert response.json == {"error": "Token metadata fetch in progress"}


def test_invalid_contract_is_422_with_the_clarity_message(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, job_status=JobStatus.INVALID, invalid_reason=109)
    response = client.get(nft_url(contract.principal))
    assert response.status_code == 422
    assert response.json["error"] == "Token error"
    assert "Clarity error" in response.json["message"]


def test_invalid_token_is_422_with_the_parse_message(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, job_status=JobStatus.INVALID, invalid_reason=105)
    response = client.get(nft_url(contract.principal))
    assert response.status_code == 422
    assert response.json == {
        "error": "Token error",
        "message": "Metadata could not be parsed or it does not conform to SIP-016",
    }


def test_missing_locale_is_422_locale_not_found(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, uri="http://m.example/1.json")
        add_metadata(s, token, locale="en")
    response = client.get(nft_url(contract.principal) + "?locale=es")
    assert response.status_code == 422
    assert response.json == {"error": "Locale not found"}


def test_token_without_metadata_answers_its_uri_only(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, uri="http://m.example/1.json")
    response = client.get(nft_url(contract.principal))
    assert response.status_code == 200
    assert response.json == {"token_uri": "http://m.example/1.json"}


def test_failed_token_that_never_succeeded_answers_empty(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, job_status=JobStatus.FAILED, processed=False)
    response = client.get(nft_url(contract.principal))
    assert (response.status_code, response.json) == (200, {})


def test_valid_metadata_keeps_json_types_and_omits_empty_fields(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, uri="http://m.example/1.json")
        add_metadata(
            s,
            token,
            name="Monkey #1",
            image="http://m.example/1.png",
            attributes=[
                ("background", "blue", None),
                ("level", 0, "number"),
                ("tags", [1, "a"], None),
            ],
            properties={"collection": "Monkeys", "id": 1, "rare": False, "meta": {"a": True}},
        )
    response = client.get(nft_url(contract.principal))
    assert response.status_code == 200
    assert response.json == {
        "token_uri": "http://m.example/1.json",
        "metadata": {
            "sip": 16,
            "name": "Monkey #1",
            "image": "http://m.example/1.png",
            "attributes": [
                {"trait_type": "background", "value": "blue"},
                {"trait_type": "level", "display_type": "number", "value": 0},
                {"trait_type": "tags", "value": [1, "a"]},
            ],
            "properties": {"collection": "Monkeys", "id": 1, "rare": False, "meta": {"a": True}},
        },
    }
    assert list(response.json["metadata"]["properties"]) == ["collection", "id", "rare", "meta"]
    unversioned = client.get(nft_url(contract.principal, prefix="/metadata"))
    assert (unversioned.status_code, unversioned.json) == (200, response.json)


def test_locale_selects_its_metadata_row(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, uri="http://m.example/1.json")
        add_metadata(s, token, name="Monkey", locale="en", default=True)
        add_metadata(s, token, name="Mono", locale="es", default=False)
    assert client.get(nft_url(contract.principal)).json["metadata"]["name"] == "Monkey"
    assert client.get(nft_url(contract.principal) + "?locale=es").json["metadata"]["name"] == "Mono"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/metadata/v1/nft/not-a-principal/1", "params/principal"),
        (f"/metadata/v1/nft/{new_principal()}/one", "params/token_id"),
        (f"/metadata/nft/{new_principal()}/1.5", "params/token_id"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client, path: str, field: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.json["error"] == "Bad Request"
    assert response.json["message"].startswith(field)


def test_unknown_route_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/metadata/v1/nope")
    assert response.status_code == 404
    assert response.json == {
        "message": "Route GET:/metadata/v1/nope not found",
        "error": "Not Found",
        "statusCode": 404,
    }
