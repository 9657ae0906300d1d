"""What a request costs the database: a small, fixed number of statements per route."""

from __future__ import annotations

import pytest
from integration.api.conftest import counted_queries
from support.builders import add_contract, add_metadata, add_token

from shared.models import Sip


@pytest.fixture
def principals(db) -> dict[str, str]:
    with db.begin() as s:
        found = {}
        for sip, key in ((Sip.SIP_009, "nft"), (Sip.SIP_010, "ft"), (Sip.SIP_013, "sft")):
            contract = add_contract(s, sip=sip)
            for number in (1, 2):
                token = add_token(s, contract, number, name=f"{key}{number}", uri="https://u/1")
                add_metadata(
                    s,
                    token,
                    attributes=[("a", 1, None), ("b", [1], None), ("c", {}, None)],
                    properties={"x": 1, "y": "z"},
                    locale="en",
                )
            found[key] = contract.principal
        return found


@pytest.mark.parametrize(
    ("url", "statements"),
    [
        ("/metadata/v1/nft/{nft}/2", 1),  # token, its ETag and metadata in one query
        ("/metadata/v1/sft/{sft}/1?locale=en", 1),
        ("/metadata/v1/ft/{ft}", 1),
        ("/metadata/v1/nft/{nft}/9", 1),  # the 404
        ("/metadata/v1/ft?limit=60", 1),  # page, total and ETag together
        ("/metadata/v1/ft?name=ft&valid_metadata_only=true&order_by=symbol", 1),
        ("/metadata/v1/search?contract={nft}:2&contract={ft}", 1),  # hits and ETag together
        ("/metadata/v1/", 2),  # chain tip (the ETag and the body's), counts (then cached)
    ],
)
def test_statements_per_request(client, app, principals, url, statements) -> None:
    with counted_queries(app) as sent:
        assert client.get(url.format(**principals)).status_code in (200, 404)
    assert len(sent) == statements, sent
