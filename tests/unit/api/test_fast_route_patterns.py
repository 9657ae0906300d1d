"""The fast path (api.fast_routes) matches parameters with the schema's own patterns: nothing
re-stated, ASCII digits only, and what it does not take is left to Flask."""

from __future__ import annotations

import pytest

from api import fast_routes
from api.routes import NFT, TOKEN_ROUTES
from api.schemas.params import (
    CONTRACT_IDENTIFIER_PATTERN,
    CONTRACT_PRINCIPAL_PATTERN,
    IDENTIFIER,
    PRINCIPAL,
)

PRINCIPAL_VALUE = "SP497E7RX3233ATBS2AB9G4WTHB63X5PBSP5VGAQ.boomboxes-cycle-12"


def test_every_declared_route_matches_its_path_with_its_schema_fields() -> None:
    assert [route.rule for route in TOKEN_ROUTES] == [
        "/ft/<principal>",
        "/nft/<principal>/<token_id>",
        "/sft/<principal>/<token_id>",
    ]
    assert NFT.path_regex().pattern == rf"(?P<principal>{PRINCIPAL.body})/(?P<token_id>-?[0-9]+)"


def test_a_pattern_body_is_the_schema_pattern_without_anchors_in_ascii_digits() -> None:
    assert PRINCIPAL.body == CONTRACT_PRINCIPAL_PATTERN[1:-1]
    assert IDENTIFIER.body == CONTRACT_IDENTIFIER_PATTERN[1:-1].replace(r"\d", "[0-9]")
    assert r"\d" not in IDENTIFIER.body


@pytest.mark.parametrize(
    ("path", "taken"),
    [
        (f"/metadata/v1/nft/{PRINCIPAL_VALUE}/35", True),
        (f"/metadata/sft/{PRINCIPAL_VALUE}/-1", True),
        (f"/metadata/v1/ft/{PRINCIPAL_VALUE}", True),
        (f"/metadata/v1/nft/{PRINCIPAL_VALUE}/٣٥", False),  # Arabic-Indic digits: Flask's 400
        (f"/metadata/v1/nft/{PRINCIPAL_VALUE}/3_5", False),
        (f"/metadata/v1/nft/{PRINCIPAL_VALUE}/{'9' * 81}", False),  # too long: Flask's answer
        ("/metadata/v1/nft/not-a-principal/1", False),
    ],
)
def test_token_paths_taken_only_when_the_schema_would_accept_them(path: str, taken: bool) -> None:
    routes = fast_routes.FastRoutes(app=None, reads=None, record=None)  # type: ignore[arg-type]
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": ""}
    assert (routes._route(environ) is not None) is taken


@pytest.mark.parametrize(
    ("query", "taken"),
    [
        (f"contract={PRINCIPAL_VALUE}", True),
        (f"contract={PRINCIPAL_VALUE}:12&contract={PRINCIPAL_VALUE}", True),
        (f"contract={PRINCIPAL_VALUE}:١٢", False),
        (f"contract={PRINCIPAL_VALUE}:{'1' * 81}", False),
        (f"contract={PRINCIPAL_VALUE}&locale=en", False),
        ("&".join([f"contract={PRINCIPAL_VALUE}"] * 51), False),
    ],
)
def test_search_queries_taken_only_when_every_identifier_is_valid(query: str, taken: bool) -> None:
    assert (fast_routes._search_identifiers(query) is not None) is taken
