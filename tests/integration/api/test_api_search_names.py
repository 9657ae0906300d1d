"""`GET /search` names an NFT or SFT hit by its shown metadata row when its token row has no
name; an FT hit keeps the token's own (shared/reads/search.py)."""

from __future__ import annotations

from integration.api.conftest import counted_queries
from support.builders import add_contract, add_metadata, add_token

from shared.models import Sip

SEARCH = "/metadata/v1/search"


def names(client, identifiers: list[str], **params: str) -> list[str | None]:
    query = [("contract", i) for i in identifiers] + list(params.items())
    response = client.get(SEARCH, query_string=query)
    assert response.status_code == 200
    return [hit.get("name") for hit in response.json]


def test_nft_and_sft_hits_carry_their_metadata_name(app, client, db) -> None:
    with db.begin() as s:
        nft = add_contract(s, sip=Sip.SIP_009)
        add_metadata(s, add_token(s, nft, 7), name="Ape #7")
        add_token(s, nft, 8)  # not fetched yet: no metadata row, no name
        sft = add_contract(s, sip=Sip.SIP_013)
        add_metadata(s, add_token(s, sft, 3, decimals=0, total_supply=5), name="Bin 3")
        ft = add_contract(s, sip=Sip.SIP_010)
        add_metadata(s, add_token(s, ft, symbol="CN"), name="Document name")
    identifiers = [f"{nft.principal}:7", f"{nft.principal}:8", f"{sft.principal}:3", ft.principal]
    with counted_queries(app) as statements:
        assert names(client, identifiers) == ["Ape #7", None, "Bin 3", None]
    assert len(statements) == 1


def test_a_token_row_name_comes_first(client, db) -> None:
    with db.begin() as s:
        nft = add_contract(s, sip=Sip.SIP_009)
        add_metadata(s, add_token(s, nft, 1, name="Contract name"), name="Document name")
        ft = add_contract(s, sip=Sip.SIP_010)
        add_metadata(s, add_token(s, ft, name="Coin"), name="Document name")
    assert names(client, [f"{nft.principal}:1", ft.principal]) == ["Contract name", "Coin"]


def test_the_name_is_the_requested_locale_s(client, db) -> None:
    with db.begin() as s:
        nft = add_contract(s, sip=Sip.SIP_009)
        token = add_token(s, nft, 1)
        add_metadata(s, token, name="Ape")
        add_metadata(s, token, name="Singe", locale="fr", default=False)
    identifiers = [f"{nft.principal}:1"]
    assert names(client, identifiers) == ["Ape"]
    assert names(client, identifiers, locale="fr") == ["Singe"]
    assert names(client, identifiers, locale="de") == [None]  # no such row: metadata left out
