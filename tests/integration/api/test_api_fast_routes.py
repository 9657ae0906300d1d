"""The token routes' fast path (api.fast_routes) answers exactly as Flask does, and only when
it is sure of the parameters; everything else reaches Flask unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from integration.api.conftest import counted_queries
from support.builders import add_contract, add_metadata, add_token
from werkzeug.test import Client
from werkzeug.wrappers import Response

from api.fast_routes import FastRoutes
from shared.models import JobStatus, Sip


@pytest.fixture
def tokens(db) -> dict[str, str]:
    with db.begin() as s:
        found = {}
        for sip, key in ((Sip.SIP_009, "nft"), (Sip.SIP_010, "ft"), (Sip.SIP_013, "sft")):
            contract = add_contract(s, sip=sip)
            token = add_token(s, contract, 1, uri="https://u/1", name="Ünïcode", decimals=6)
            add_metadata(
                s,
                token,
                name="Ünïcode #1",
                attributes=[("level", 5, "number"), ("big", 2**70, None)],
                properties={"x": {"y": [1, "z"]}},
                image="ipfs://img",
            )
            add_token(s, contract, 2, job_status=JobStatus.PENDING, processed=False)
            add_token(s, contract, 3, job_status=JobStatus.INVALID, invalid_reason=7)
            found[key] = contract.principal
        bad = add_contract(s, job_status=JobStatus.INVALID, invalid_reason=3)
        add_token(s, bad, 1)
        found["bad"] = bad.principal
        return found


class _Spy:
    """Counts the requests that reach the Flask app behind the fast path."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def spy(app: Flask) -> _Spy:
    fast = app.wsgi_app
    assert isinstance(fast, FastRoutes)
    fast.app = _Spy(fast.app)
    return fast.app


FAST = [
    "/metadata/v1/nft/{nft}/1",
    "/metadata/nft/{nft}/1",
    "/metadata/v1/sft/{sft}/1",
    "/metadata/v1/ft/{ft}",
    "/metadata/ft/{ft}",
    "/metadata/v1/nft/{nft}/2",  # 422 fetch in progress
    "/metadata/v1/nft/{nft}/3",  # 422 token error
    "/metadata/v1/nft/{nft}/9",  # 404 token not found
    "/metadata/v1/nft/{nft}/0007",  # read as 7, as the Integer field does
    "/metadata/v1/nft/{nft}/-1",
    "/metadata/v1/nft/{bad}/1",  # 422: the contract is invalid
    "/metadata/v1/nft/SP000000000000000000002Q6VF78.nope/1",  # 404 contract not found
    "/metadata/v1/search?contract={nft}:1&contract={ft}&contract={sft}:1&contract={nft}:9",
    "/metadata/search?contract={nft}:1&contract={nft}:01&contract={nft}%3A2",
    "/metadata/v1/search?contract=SP000000000000000000002Q6VF78.nope",  # [] without an ETag
]
FLASK = [
    "/metadata/v1/nft/{nft}/1?locale=en",  # any query string
    "/metadata/v1/nft/{nft}/x",  # 400: token id
    "/metadata/v1/nft/not-a-principal/1",  # 400: principal
    "/metadata/v1/nft/{nft}/1/",  # 404 route
    "/metadata/v1/nft/{nft}/1%0A",  # a trailing newline is not a number
    "/metadata/v1/ft",
    "/metadata/v1/",
    "/metadata/v1/search?contract={nft}:1&locale=en",
    "/metadata/v1/search?contract={nft}:1&limit=5",  # ignored by Flask; not taken here
    "/metadata/v1/search?contract={nft}:x",  # 400
    "/metadata/v1/search",  # 400: contract is required
    "/metadata/v1/search?" + "&".join(["contract={nft}:1"] * 51),  # 400: too many
    "/metadata/v1/search?contract={nft}:" + "9" * 90,
]


def _flask_only(app: Flask, url: str, **kwargs: Any) -> Response:
    fast = app.wsgi_app
    assert isinstance(fast, FastRoutes)
    flask = fast.app.app if isinstance(fast.app, _Spy) else fast.app
    return Client(flask, Response).get(url, **kwargs)


def _same(fast: Response, flask: Response) -> None:
    assert (fast.status, fast.get_data()) == (flask.status, flask.get_data())
    assert list(fast.headers.items()) == list(flask.headers.items())


@pytest.mark.parametrize("url", FAST)
def test_the_fast_path_answers_as_flask_does(client, app, tokens, spy, url) -> None:
    url = url.format(**tokens)
    with counted_queries(app) as statements:
        fast = client.get(url)
    assert spy.calls == 0, "the fast path handed the request to Flask"
    assert len(statements) == 1
    _same(fast, _flask_only(app, url))


@pytest.mark.parametrize("url", FLASK)
def test_other_requests_reach_flask_unchanged(client, app, tokens, spy, url) -> None:
    url = url.format(**tokens)
    response = client.get(url)
    assert spy.calls == 1
    _same(response, _flask_only(app, url))


def test_a_matching_etag_is_answered_304_as_flask_does(client, app, tokens, spy) -> None:
    url = f"/metadata/v1/nft/{tokens['nft']}/1"
    etag = client.get(url).headers["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}'):
        fast = client.get(url, headers={"If-None-Match": header})
        assert fast.status_code == 304
        _same(fast, _flask_only(app, url, headers={"If-None-Match": header}))
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    assert spy.calls == 0


def test_head_and_other_methods_reach_flask(client, tokens, spy) -> None:
    url = f"/metadata/v1/nft/{tokens['nft']}/1"
    assert client.head(url).status_code == 200
    assert client.post(url).status_code == 404
    assert spy.calls == 2


def test_the_body_keeps_unicode_and_big_numbers(client, tokens) -> None:
    response = client.get(f"/metadata/v1/nft/{tokens['nft']}/1")
    assert "Ünïcode #1".encode() in response.get_data()
    assert response.json["metadata"]["attributes"][1] == {"trait_type": "big", "value": 2**70}
    assert response.json["metadata"]["properties"] == {"x": {"y": [1, "z"]}}


def test_a_lost_connection_is_replaced_without_an_error(client, app, tokens, spy) -> None:
    url = f"/metadata/v1/ft/{tokens['ft']}"
    assert client.get(url).status_code == 200
    with app.extensions["token_metadata_engine"].connect() as conn:
        terminated = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'tm-api-raw'"
        ).scalar()
    assert terminated == 1
    assert client.get(url).status_code == 200
    assert spy.calls == 0, "the read was not retried: Flask answered instead"
