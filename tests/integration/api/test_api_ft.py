"""The FT routes: Hiro's API's answers and error order, with data of our own."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from support.builders import add_contract, add_metadata, add_token, new_principal

from shared.models import JobStatus, Sip


def ft_url(principal: str, prefix: str = "/metadata/v1") -> str:
    return f"{prefix}/ft/{principal}"


def add_ft(session: Session, principal: str | None = None, **fields) -> tuple[str, object]:
    contract = add_contract(session, principal, sip=Sip.SIP_010)
    return contract.principal, add_token(session, contract, **fields)


# --- GET /ft/{principal} ------------------------------------------------------------------


def test_unknown_contract_is_404_contract_not_found(client: FlaskClient) -> None:
    response = client.get(ft_url(new_principal("coin")))
    assert (response.status_code, response.json) == (404, {"error": "Contract not found"})


def test_contract_without_tokens_is_404_token_not_found(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_010)
    response = client.get(ft_url(contract.principal))
    assert (response.status_code, response.json) == (404, {"error": "Token not found"})


def test_unprocessed_token_is_422_fetch_in_progress(client, db) -> None:
    with db.begin() as s:
        principal, _ = add_ft(s, job_status=JobStatus.PENDING, processed=False)
    response = client.get(ft_url(principal))
    assert (response.status_code, response.json) == (
        422,
        {"error": "Token metadata fetch in progress"},
    )


def test_invalid_contract_is_422_with_the_clarity_message(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(
            s, sip=Sip.SIP_010, job_status=JobStatus.INVALID, invalid_reason=109
        )
    response = client.get(ft_url(contract.principal))
    assert response.status_code == 422
    assert response.json["error"] == "Token error"
    assert "Clarity error" in response.json["message"]


def test_invalid_token_metadata_is_422_with_the_parse_message(client, db) -> None:
    with db.begin() as s:
        principal, _ = add_ft(s, job_status=JobStatus.INVALID, invalid_reason=105)
    response = client.get(ft_url(principal))
    assert response.status_code == 422
    assert "Metadata could not be parsed" in response.json["message"]


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (None, "Unknown error"),
        (100, "Unknown error"),
        (101, "Metadata size is too large to process"),
        (102, "Image size is too large to process"),
        (103, "Metadata could not be processed because it took too long to respond"),
        (104, "Image could not be processed because it took too long to respond"),
        (105, "Metadata could not be parsed or it does not conform to SIP-016"),
        (106, "Image processing failed because it could not be parsed"),
        (107, "Metadata could not be processed because the server responded with an error"),
        (108, "Image could not be processed because the server responded with an error"),
        (109, "The token contract produced a Clarity error when trying to fetch metadata"),
        (999, "Unknown error"),
    ],
)
def test_every_invalid_reason_has_its_message(client, db, reason, message) -> None:
    with db.begin() as s:
        principal, _ = add_ft(s, job_status=JobStatus.INVALID, invalid_reason=reason)
    response = client.get(ft_url(principal))
    assert (response.status_code, response.json) == (
        422,
        {"error": "Token error", "message": message},
    )


def test_missing_locale_is_422_locale_not_found(client, db) -> None:
    with db.begin() as s:
        principal, token = add_ft(s, name="hello-world")
        add_metadata(s, token, name="hello-world", locale="en")
    response = client.get(ft_url(principal) + "?locale=es")
    assert (response.status_code, response.json) == (422, {"error": "Locale not found"})


def test_locale_is_checked_before_processing_state(client, db) -> None:
    with db.begin() as s:
        principal, _ = add_ft(s, job_status=JobStatus.PENDING, processed=False)
    assert client.get(ft_url(principal) + "?locale=fr").json == {"error": "Locale not found"}
    assert client.get(ft_url(principal) + "?locale=").json == {
        "error": "Token metadata fetch in progress"
    }


def test_token_without_metadata_answers_its_contract_fields(client, db) -> None:
    with db.begin() as s:
        principal, _ = add_ft(
            s,
            name="hello-world",
            symbol="HELLO",
            decimals=6,
            total_supply=1,
            uri="http://test.com/uri.json",
        )
    response = client.get(ft_url(principal))
    assert response.status_code == 200
    assert response.json == {
        "decimals": 6,
        "name": "hello-world",
        "symbol": "HELLO",
        "token_uri": "http://test.com/uri.json",
        "total_supply": "1",
        "sender_address": principal.split(".")[0],
        "asset_identifier": f"{principal}::ft-token",
        "tx_id": "0x123456",
    }


def test_valid_ft_metadata(client, db) -> None:
    with db.begin() as s:
        principal, token = add_ft(
            s,
            name="hello-world",
            symbol="HELLO",
            decimals=6,
            total_supply=1,
            uri="http://test.com/uri.json",
        )
        add_metadata(
            s,
            token,
            name="hello-world",
            description="test",
            image="http://test.com/image.png",
            cached_image="http://test.com/image.png?processed=true",
            cached_thumbnail_image="http://test.com/image.png?thumb=true",
            attributes=[("strength", 1, "number"), ("powers", ["fly", "swim"], None)],
            properties={"prop1": "ABC", "prop2": 1},
        )
    response = client.get(ft_url(principal))
    assert response.status_code == 200
    assert response.json == {
        "name": "hello-world",
        "symbol": "HELLO",
        "decimals": 6,
        "total_supply": "1",
        "token_uri": "http://test.com/uri.json",
        "description": "test",
        "image_uri": "http://test.com/image.png?processed=true",
        "image_canonical_uri": "http://test.com/image.png",
        "image_thumbnail_uri": "http://test.com/image.png?thumb=true",
        "tx_id": "0x123456",
        "sender_address": principal.split(".")[0],
        "asset_identifier": f"{principal}::ft-token",
        "metadata": {
            "sip": 16,
            "name": "hello-world",
            "description": "test",
            "image": "http://test.com/image.png",
            "cached_image": "http://test.com/image.png?processed=true",
            "cached_thumbnail_image": "http://test.com/image.png?thumb=true",
            "attributes": [
                {"trait_type": "strength", "display_type": "number", "value": 1},
                {"trait_type": "powers", "value": ["fly", "swim"]},
            ],
            "properties": {"prop1": "ABC", "prop2": 1},
        },
    }
    unversioned = client.get(ft_url(principal, prefix="/metadata"))
    assert (unversioned.status_code, unversioned.json) == (200, response.json)


def test_locale_selects_the_localized_description(client, db) -> None:
    with db.begin() as s:
        principal, token = add_ft(s, name="coin", symbol="CN")
        add_metadata(s, token, name="Coin", locale="en", description="A coin")
        add_metadata(s, token, name="Moneda", locale="es", default=False, description="Una")
    body = client.get(ft_url(principal) + "?locale=es").json
    assert (body["description"], body["metadata"]["name"]) == ("Una", "Moneda")
    assert client.get(ft_url(principal)).json["description"] == "A coin"
