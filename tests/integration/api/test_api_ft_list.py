"""`GET /ft`: Hiro's API's list behaviour, with docs/reference-differences.md#ft-list."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from support.builders import add_contract, add_metadata, add_token, new_principal

from shared.models import Sip

LIST = "/metadata/v1/ft"


def add_listed_ft(
    session: Session, name: str, symbol: str, *, metadata: bool = True, principal: str | None = None
) -> str:
    contract = add_contract(session, principal or new_principal(symbol.lower()), sip=Sip.SIP_010)
    token = add_token(
        session,
        contract,
        name=name,
        symbol=symbol,
        decimals=6,
        total_supply=1000,
        uri=f"https://{symbol.lower()}.example/token.json",
    )
    if metadata:
        add_metadata(
            session,
            token,
            name=name,
            description=f"{name} description",
            image=f"ipfs://{symbol.lower()}/image.png",
            cached_image=f"https://cdn.example/{symbol.lower()}.png",
        )
    return contract.principal


@pytest.fixture
def three_tokens(db) -> dict[str, str]:
    """Hiro's test tokens MEME, MIA and STSW: names whose case would break a byte-wise order."""
    with db.begin() as s:
        return {
            "MEME": add_listed_ft(s, "Meme token", "MEME"),
            "MIA": add_listed_ft(s, "miamicoin", "MIA"),
            "STSW": add_listed_ft(s, "STACKSWAP", "STSW"),
        }


def symbols(response: Any) -> list[str]:
    return [item["symbol"] for item in response.json["results"]]


def test_lists_tokens_with_their_fields(client: FlaskClient, three_tokens) -> None:
    response = client.get("/metadata/ft")
    assert response.status_code == 200
    meme = three_tokens["MEME"]
    assert response.json["total"] == 3
    assert (response.json["limit"], response.json["offset"]) == (20, 0)
    assert response.json["results"][0] == {
        "name": "Meme token",
        "symbol": "MEME",
        "decimals": 6,
        "total_supply": "1000",
        "token_uri": "https://meme.example/token.json",
        "description": "Meme token description",
        "image_uri": "https://cdn.example/meme.png",
        "image_canonical_uri": "ipfs://meme/image.png",
        "tx_id": "0x123456",
        "sender_address": meme.split(".")[0],
        "asset_identifier": f"{meme}::ft-token",
        "contract_principal": meme,
    }
    assert symbols(response) == ["MEME", "MIA", "STSW"]
    assert client.get(LIST).json == response.json


def test_lists_the_thumbnail_and_one_row_per_token_whatever_its_locales(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_010)
        token = add_token(s, contract, name="Polyglot", symbol="PGT")
        add_metadata(s, token, name="Polyglot", locale="en", cached_thumbnail_image="https://t/1")
        add_metadata(s, token, name="Políglota", locale="es", default=False)
    body = client.get(LIST).json
    assert body["total"] == 1
    assert [item["image_thumbnail_uri"] for item in body["results"]] == ["https://t/1"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("miami", ["MIA"]), ("Miami", ["MIA"]), ("nothing", []), ("TOKEN", ["MEME"]), ("", None)],
)
def test_filters_by_name_substring_case_insensitively(client, three_tokens, name, expected) -> None:
    response = client.get(LIST, query_string={"name": name})
    assert symbols(response) == (expected if expected is not None else ["MEME", "MIA", "STSW"])
    assert response.json["total"] == len(symbols(response))


def test_name_filter_takes_percent_and_underscore_literally(client, db) -> None:
    with db.begin() as s:
        add_listed_ft(s, "100% real", "REAL")
        add_listed_ft(s, "100 fake", "FAKE")
        add_listed_ft(s, "snake_case", "SNK")
        add_listed_ft(s, "snakeXcase", "SNX")
    assert symbols(client.get(LIST, query_string={"name": "100%"})) == ["REAL"]
    assert symbols(client.get(LIST, query_string={"name": "e_c"})) == ["SNK"]


def test_lists_tokens_without_metadata_unless_valid_metadata_only(client, db, three_tokens):
    with db.begin() as s:
        add_listed_ft(s, "Scam token", "SCAM", metadata=False)
    assert symbols(client.get(LIST, query_string={"name": "scam"})) == ["SCAM"]
    assert client.get(LIST).json["total"] == 4
    only_valid = client.get(LIST, query_string={"valid_metadata_only": "true"})
    assert (only_valid.json["total"], symbols(only_valid)) == (3, ["MEME", "MIA", "STSW"])
    assert client.get(LIST, query_string={"valid_metadata_only": "false"}).json["total"] == 4
    scam = client.get(LIST, query_string={"symbol": "SCAM"}).json["results"][0]
    assert "description" not in scam
    assert "image_uri" not in scam


@pytest.mark.parametrize(("symbol", "expected"), [("MIA", ["MIA"]), ("mia", ["MIA"]), ("MI", [])])
def test_filters_by_symbol_exactly_case_insensitively(client, three_tokens, symbol, expected):
    assert symbols(client.get(LIST, query_string={"symbol": symbol})) == expected


def test_filters_by_deployer_address_prefix(client, three_tokens) -> None:
    deployer = three_tokens["MIA"].split(".")[0]
    assert symbols(client.get(LIST, query_string={"address": deployer})) == ["MIA"]
    other = new_principal().split(".")[0]
    assert symbols(client.get(LIST, query_string={"address": other})) == []
    whole = client.get(LIST, query_string={"address": three_tokens["STSW"]})
    assert symbols(whole) == ["STSW"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"order_by": "name"}, ["MEME", "MIA", "STSW"]),
        ({"order_by": "name", "order": "asc"}, ["MEME", "MIA", "STSW"]),
        ({"order_by": "name", "order": "desc"}, ["STSW", "MIA", "MEME"]),
        ({"order_by": "symbol", "order": "asc"}, ["MEME", "MIA", "STSW"]),
        ({"order_by": "symbol", "order": "desc"}, ["STSW", "MIA", "MEME"]),
        ({"order": "desc"}, ["STSW", "MIA", "MEME"]),
    ],
)
def test_sorts_by_name_or_symbol(client, three_tokens, params, expected) -> None:
    assert symbols(client.get(LIST, query_string=params)) == expected


def test_pages_are_stable_with_ties_and_total_counts_past_the_end(client, db) -> None:
    with db.begin() as s:
        for n in range(7):
            add_listed_ft(s, "Same name", f"T{n}")
    seen = []
    for offset in (0, 3, 6):
        body = client.get(LIST, query_string={"limit": 3, "offset": offset}).json
        assert (body["limit"], body["offset"], body["total"]) == (3, offset, 7)
        seen += symbols_of(body)
    assert sorted(seen) == [f"T{n}" for n in range(7)]
    past = client.get(LIST, query_string={"offset": 100}).json
    assert past == {"limit": 20, "offset": 100, "total": 7, "results": []}


def symbols_of(body: dict[str, Any]) -> list[str]:
    return [item["symbol"] for item in body["results"]]


def test_tokens_without_a_name_sort_last_ascending_first_descending(client, db) -> None:
    with db.begin() as s:
        add_listed_ft(s, "Alpha", "A")
        contract = add_contract(s, sip=Sip.SIP_010)
        add_token(s, contract, symbol="NONAME")
    assert symbols(client.get(LIST)) == ["A", "NONAME"]
    assert symbols(client.get(LIST, query_string={"order": "desc"})) == ["NONAME", "A"]


def test_only_fungible_tokens_are_listed(client, db) -> None:
    with db.begin() as s:
        add_listed_ft(s, "Coin", "CN")
        add_token(s, add_contract(s, sip=Sip.SIP_009), name="Not a coin", symbol="NFT")
        add_token(s, add_contract(s, sip=Sip.SIP_013), name="Semi", symbol="SFT")
    assert symbols(client.get(LIST)) == ["CN"]
