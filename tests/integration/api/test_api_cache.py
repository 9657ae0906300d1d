"""ETags and Cache-Control as Hiro's API sends them, with our differences
(docs/reference-differences.md#etags)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from integration.api.conftest import counted_queries
from sqlalchemy import func, update
from support.builders import add_contract, add_metadata, add_token

from api.caching import CACHE_CONTROL, if_none_match
from shared.models import ChainTip, Job, JobStatus, Sip, Token

A_MOMENT = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ROUTES = {
    Sip.SIP_010: "/metadata/v1/ft/{principal}",
    Sip.SIP_009: "/metadata/v1/nft/{principal}/{number}",
    Sip.SIP_013: "/metadata/v1/sft/{principal}/{number}",
}


def revalidate(client: FlaskClient, url: str, etag: str):
    return client.get(url, headers={"If-None-Match": etag})


def test_status_etag_follows_the_chain_tip(client, db) -> None:
    first = client.get("/metadata/v1/")
    assert (first.headers["ETag"], first.headers["Cache-Control"]) == ('"1"', CACHE_CONTROL)
    cached = revalidate(client, "/metadata/v1/", first.headers["ETag"])
    assert (cached.status_code, cached.get_data()) == (304, b"")
    assert cached.headers["Cache-Control"] == CACHE_CONTROL
    assert "ETag" not in cached.headers
    with db.begin() as s:
        s.execute(update(ChainTip).values(block_height=100, index_block_hash="0x64"))
    fresh = revalidate(client, "/metadata/", first.headers["ETag"])
    assert (fresh.status_code, fresh.headers["ETag"]) == (200, '"100"')


@pytest.mark.parametrize("sip", list(ROUTES))
def test_token_etag_follows_the_token_update(client, db, sip) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=sip)
        token = add_token(s, contract, uri="https://t.example/1.json")
        add_metadata(s, token)
    url = ROUTES[sip].format(principal=contract.principal, number=1)
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == CACHE_CONTROL
    assert revalidate(client, url, etag).status_code == 304
    with db.begin() as s:
        s.execute(update(Token).where(Token.id == token.id).values(updated_at=func.now()))
    assert revalidate(client, url, etag).status_code == 200


def test_etags_are_per_token_number_and_survive_query_strings(client, db) -> None:
    """Hiro's API took token 1's ETag for `/nft/p/5?locale=x` and none for FTs; ours are per
    token number (docs/reference-differences.md#etags)."""
    with db.begin() as s:
        contract = add_contract(s)
        for number in (1, 5):
            token = add_token(s, contract, number)
            add_metadata(s, token, locale="en")
        ft = add_contract(s, sip=Sip.SIP_010)
        add_metadata(s, add_token(s, ft), locale="en")
        s.execute(update(Token).where(Token.token_number == 1).values(updated_at=A_MOMENT))
    url = f"/metadata/v1/nft/{contract.principal}"
    etag_1, etag_5 = client.get(f"{url}/1").headers["ETag"], client.get(f"{url}/5").headers["ETag"]
    assert etag_1 == f'"{A_MOMENT.timestamp():.6f}"'
    assert etag_1 != etag_5
    assert client.get(f"{url}/5?locale=en").headers["ETag"] == etag_5
    assert revalidate(client, f"{url}/5?locale=en", etag_5).status_code == 304
    assert revalidate(client, f"{url}/5?locale=en", etag_1).status_code == 200
    ft_url = f"/metadata/v1/ft/{ft.principal}?locale=en"
    assert revalidate(client, ft_url, client.get(ft_url).headers["ETag"]).status_code == 304


def test_a_304_runs_only_the_etag_query(client, db, app) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract)
    url = f"/metadata/v1/nft/{contract.principal}/1"
    etag = client.get(url).headers["ETag"]
    with counted_queries(app) as statements:
        assert revalidate(client, url, etag).status_code == 304
    assert len(statements) == 1
    assert "EXTRACT(epoch FROM t.updated_at)" in statements[0]


def test_errors_are_never_cacheable(client, db) -> None:
    with db.begin() as s:
        pending = add_contract(s)
        add_token(s, pending, job_status=JobStatus.PENDING, processed=False)
        localized = add_contract(s)
        add_metadata(s, add_token(s, localized), locale="en")
    for url in (
        f"/metadata/v1/nft/{pending.principal}/1",
        f"/metadata/v1/nft/{localized.principal}/1?locale=xx",
        f"/metadata/v1/nft/{localized.principal}/9",
        "/metadata/v1/nft/not-valid/1",
        "/metadata/v1/nope",
    ):
        response = client.get(url)
        assert response.status_code >= 400, url
        assert "ETag" not in response.headers, url
        assert "Cache-Control" not in response.headers, url


def test_a_token_turned_invalid_is_not_answered_304(client, db) -> None:
    """A revalidation gets the new 422, not a 304 (Hiro's API hid it behind a 304)."""
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract)
    url = f"/metadata/v1/nft/{contract.principal}/1"
    etag = client.get(url).headers["ETag"]
    with db.begin() as s:
        s.execute(
            update(Job)
            .where(Job.token_id == token.id)
            .values(status=JobStatus.INVALID, invalid_reason=107)
        )
    assert revalidate(client, url, etag).status_code == 422


def test_list_etag_follows_the_chain_tip_and_token_changes(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_010)
        token = add_token(s, contract, name="Coin", symbol="CN")
    etag = client.get("/metadata/v1/ft").headers["ETag"]
    assert revalidate(client, "/metadata/v1/ft?limit=5", etag).status_code == 304
    with db.begin() as s:
        s.execute(update(Token).where(Token.id == token.id).values(updated_at=func.now()))
    etag_after_update = revalidate(client, "/metadata/v1/ft", etag).headers["ETag"]
    assert etag_after_update != etag
    with db.begin() as s:
        s.execute(update(ChainTip).values(block_height=2, index_block_hash="0x02"))
    assert revalidate(client, "/metadata/v1/ft", etag_after_update).status_code == 200


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, set()),
        ('"12"', {"12"}),
        ('W/"12"', {"12"}),
        ("12", {"12"}),
        ('"1", W/"2" ,"3"', {"1", "2", "3"}),
        ("*", {"*"}),
    ],
)
def test_if_none_match_is_parsed_permissively(header, expected) -> None:
    assert if_none_match(header) == expected
