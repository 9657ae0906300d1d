"""The SFT route: Hiro's API's answers and error order, with data of our own."""

from __future__ import annotations

from flask.testing import FlaskClient
from support.builders import add_contract, add_metadata, add_token, new_principal

from shared.models import JobStatus, Sip


def sft_url(principal: str, token_id: int = 1, prefix: str = "/metadata/v1") -> str:
    return f"{prefix}/sft/{principal}/{token_id}"


def test_unknown_contract_is_404_contract_not_found(client: FlaskClient) -> None:
    response = client.get(sft_url(new_principal("semi")))
    assert (response.status_code, response.json) == (404, {"error": "Contract not found"})


def test_contract_without_the_token_is_404_token_not_found(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        add_token(s, contract, 1)
    response = client.get(sft_url(contract.principal, 2))
    assert (response.status_code, response.json) == (404, {"error": "Token not found"})


def test_unprocessed_token_is_422_fetch_in_progress(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        add_token(s, contract, job_status=JobStatus.QUEUED, processed=False)
    response = client.get(sft_url(contract.principal))
    assert (response.status_code, response.json) == (
        422,
        {"error": "Token metadata fetch in progress"},
    )


def test_invalid_contract_is_422_with_the_clarity_message(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(
            s, sip=Sip.SIP_013, job_status=JobStatus.INVALID, invalid_reason=109
        )
    response = client.get(sft_url(contract.principal))
    assert (response.status_code, response.json) == (
        422,
        {
            "error": "Token error",
            "message": "The token contract produced a Clarity error when trying to fetch metadata",
        },
    )


def test_invalid_token_metadata_is_422_with_the_parse_message(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        add_token(s, contract, job_status=JobStatus.INVALID, invalid_reason=105)
    response = client.get(sft_url(contract.principal))
    assert response.status_code == 422
    assert "Metadata could not be parsed" in response.json["message"]


def test_missing_locale_is_422_locale_not_found(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        token = add_token(s, contract, uri="https://sft.example/1.json", decimals=6)
        add_metadata(s, token, locale="en")
    response = client.get(sft_url(contract.principal) + "?locale=es")
    assert (response.status_code, response.json) == (422, {"error": "Locale not found"})


def test_token_without_metadata_answers_its_own_fields(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        add_token(s, contract, uri="https://sft.example/1.json", decimals=6, total_supply=1)
    response = client.get(sft_url(contract.principal))
    assert (response.status_code, response.json) == (
        200,
        {"token_uri": "https://sft.example/1.json", "decimals": 6, "total_supply": "1"},
    )


def test_valid_sft_metadata(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        token = add_token(
            s, contract, 7, uri="https://sft.example/7.json", decimals=6, total_supply=200
        )
        add_metadata(
            s,
            token,
            name="Key #7",
            description="A key",
            image="ipfs://keys/7.png",
            cached_image="https://cdn.example/7.png",
            cached_thumbnail_image="https://cdn.example/7-thumb.png",
            attributes=[("strength", 3, "number")],
            properties={"edition": "first", "burnable": True},
        )
    response = client.get(sft_url(contract.principal, 7))
    assert response.status_code == 200
    assert response.json == {
        "token_uri": "https://sft.example/7.json",
        "decimals": 6,
        "total_supply": "200",
        "metadata": {
            "sip": 16,
            "name": "Key #7",
            "description": "A key",
            "image": "ipfs://keys/7.png",
            "cached_image": "https://cdn.example/7.png",
            "cached_thumbnail_image": "https://cdn.example/7-thumb.png",
            "attributes": [{"trait_type": "strength", "display_type": "number", "value": 3}],
            "properties": {"edition": "first", "burnable": True},
        },
    }
    unversioned = client.get(sft_url(contract.principal, 7, prefix="/metadata"))
    assert (unversioned.status_code, unversioned.json) == (200, response.json)


def test_u128_supply_and_zero_decimals_are_exact(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        add_token(s, contract, 2**128 - 1, decimals=0, total_supply=2**128 - 1)
    response = client.get(sft_url(contract.principal, 2**128 - 1))
    assert response.json == {"decimals": 0, "total_supply": str(2**128 - 1)}
