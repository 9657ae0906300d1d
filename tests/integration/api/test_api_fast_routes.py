"""The token routes' fast path (api.fast_routes) answers exactly as Flask does, and only when
it is sure of the parameters; everything else reaches Flask unchanged. The parity cases are
generated from the route declarations (api.routes) and every class of answer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from flask import Flask
from integration.api.conftest import counted_queries
from support.builders import add_contract, add_metadata, add_token
from werkzeug.test import Client
from werkzeug.wrappers import Response

from api.compression import GzipLargeJson
from api.cors import AnyOrigin
from api.fast_routes import FastRoutes
from api.routes import TOKEN_ROUTES, TokenRoute
from shared.models import JobStatus, Sip

MISSING_CONTRACT = "SP000000000000000000002Q6VF78.nope"
SIPS = {"nft": Sip.SIP_009, "sft": Sip.SIP_013, "ft": Sip.SIP_010}


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


def _fast_routes(app: Flask) -> FastRoutes:
    outer = app.wsgi_app
    assert isinstance(outer, AnyOrigin), "the CORS layer is the outermost"
    assert isinstance(outer.app, GzipLargeJson), "then compression, for both paths"
    assert isinstance(outer.app.app, FastRoutes)
    return outer.app.app


@pytest.fixture
def spy(app: Flask) -> _Spy:
    fast = _fast_routes(app)
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
    fast = _fast_routes(app)
    flask = fast.app.app if isinstance(fast.app, _Spy) else fast.app
    return Client(AnyOrigin(flask), Response).get(url, **kwargs)


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


# --- every declared route, every class of answer --------------------------------------------


@pytest.fixture
def per_route(db) -> dict[str, dict[str, str]]:
    """For each route kind: contracts whose token 1 is processed, pending or invalid, and an
    invalid contract."""
    found: dict[str, dict[str, str]] = {}
    with db.begin() as s:
        for kind, sip in SIPS.items():
            ok = add_contract(s, sip=sip)
            add_metadata(s, add_token(s, ok, 1, uri="https://u/1", decimals=6), name="One")
            pending = add_contract(s, sip=sip)
            add_token(s, pending, 1, job_status=JobStatus.PENDING, processed=False)
            invalid = add_contract(s, sip=sip)
            add_token(s, invalid, 1, job_status=JobStatus.INVALID, invalid_reason=7)
            bad = add_contract(s, sip=sip, job_status=JobStatus.INVALID, invalid_reason=3)
            add_token(s, bad, 1)
            found[kind] = {
                "ok": ok.principal,
                "pending": pending.principal,
                "invalid": invalid.principal,
                "bad": bad.principal,
            }
    return found


def _url(route: TokenRoute, principal: str, number: str = "1", prefix: str = "/metadata/v1") -> str:
    token = "" if route.token_number else f"/{number}"
    return f"{prefix}/{route.kind}/{principal}{token}"


# (answer class, expected status, how to build the URL from a route and its contracts)
FAST_CLASSES = [
    ("found", 200, lambda r, c: _url(r, c["ok"])),
    ("found, unversioned prefix", 200, lambda r, c: _url(r, c["ok"], prefix="/metadata")),
    ("fetch in progress", 422, lambda r, c: _url(r, c["pending"])),
    ("token error", 422, lambda r, c: _url(r, c["invalid"])),
    ("contract invalid", 422, lambda r, c: _url(r, c["bad"])),
    ("contract not found", 404, lambda r, c: _url(r, MISSING_CONTRACT)),
]
FAST_WITH_TOKEN_ID = [
    ("token not found", 404, lambda r, c: _url(r, c["ok"], "9")),
    ("leading zeros", 200, lambda r, c: _url(r, c["ok"], "0001")),
    ("negative id", 404, lambda r, c: _url(r, c["ok"], "-1")),
]
FLASK_CLASSES = [
    ("locale asked", lambda r, c: _url(r, c["ok"]) + "?locale=en"),
    ("bad principal", lambda r, c: _url(r, "not-a-principal")),
    ("trailing slash", lambda r, c: _url(r, c["ok"]) + "/"),
]
FLASK_WITH_TOKEN_ID = [
    ("letters", lambda r, c: _url(r, c["ok"], "x")),
    ("non-ASCII digits", lambda r, c: _url(r, c["ok"], "\u0661")),
    ("too many digits", lambda r, c: _url(r, c["ok"], "9" * 81)),
    ("trailing newline", lambda r, c: _url(r, c["ok"], "1%0A")),
]


def _cases(classes: list[Any], with_token_id: list[Any]) -> list[Any]:
    return [
        pytest.param(route, *case[1:], id=f"{route.kind}: {case[0]}")
        for route in TOKEN_ROUTES
        for case in (classes if route.token_number else classes + with_token_id)
    ]


@pytest.mark.parametrize(("route", "status", "url_of"), _cases(FAST_CLASSES, FAST_WITH_TOKEN_ID))
def test_every_route_answers_every_class_on_the_fast_path_as_flask_does(
    client, app, per_route, spy, route, status, url_of
) -> None:
    url = url_of(route, per_route[route.kind])
    fast = client.get(url)
    assert spy.calls == 0, "the fast path handed the request to Flask"
    assert fast.status_code == status
    _same(fast, _flask_only(app, url))
    assert fast.headers["Access-Control-Allow-Origin"] == "*"
    if status == 200:
        etag = fast.headers["ETag"]
        revalidated = client.get(url, headers={"If-None-Match": etag})
        assert revalidated.status_code == 304
        _same(revalidated, _flask_only(app, url, headers={"If-None-Match": etag}))
    else:
        assert "ETag" not in fast.headers


@pytest.mark.parametrize(("route", "url_of"), _cases(FLASK_CLASSES, FLASK_WITH_TOKEN_ID))
def test_every_route_hands_what_it_is_not_sure_of_to_flask(
    client, app, per_route, spy, route, url_of
) -> None:
    url = url_of(route, per_route[route.kind])
    response = client.get(url)
    assert spy.calls == 1
    assert response.status_code in (200, 400, 404, 422)
    _same(response, _flask_only(app, url))


# --- collection pages and galleries (api.fast_pages) ----------------------------------------

OWNER = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
FAST_PAGES = [
    "/metadata/v1/nft/{nft}",
    "/metadata/nft/{nft}?limit=2",
    "/metadata/v1/sft/{sft}?limit=200",
    "/metadata/v1/nft/{nft}?limit=1&cursor=MQ",
    "/metadata/v1/nft/{nft}?cursor=MQ&limit=1",
    "/metadata/v1/nft/{nft}?cursor=bm90LWEtbnVtYmVy",  # 400: not a cursor this service wrote
    "/metadata/v1/nft/{ft}",  # 404: not an NFT contract
    "/metadata/v1/nft/SP000000000000000000002Q6VF78.nope",  # 404
    f"/metadata/v1/owners/{OWNER}/nft",
    f"/metadata/owners/{OWNER}/nft?limit=5&cursor=MS4y",
    "/metadata/v1/owners/{nft}/nft",  # a contract principal may own NFTs too
]
FLASK_PAGES = [
    "/metadata/v1/nft/{nft}?limit=0",  # 400
    "/metadata/v1/nft/{nft}?limit=201",  # 400
    "/metadata/v1/nft/{nft}?limit=-1",
    "/metadata/v1/nft/{nft}?limit=1&limit=2",
    "/metadata/v1/nft/{nft}?cursor=" + "A" * 300,  # 400: too long
    "/metadata/v1/nft/{nft}?cursor=a%2Bb",  # escaped
    "/metadata/v1/nft/{nft}?locale=en",
    "/metadata/v1/nft/{nft}?include=raw",
    "/metadata/v1/nft/{nft}?token_ids=1",
    "/metadata/v1/nft/{nft}?limit",
    "/metadata/v1/nft/not-a-principal",  # 400
    "/metadata/v1/owners/not-a-principal/nft",  # 400
    f"/metadata/v1/owners/{OWNER}/nft?contract=" + "{nft}",
    f"/metadata/v1/owners/{OWNER}/sft",  # 404 route
]


@pytest.mark.parametrize("url", FAST_PAGES)
def test_pages_are_answered_on_the_fast_path_as_flask_does(client, app, tokens, spy, url) -> None:
    url = url.format(**tokens)
    fast = client.get(url)
    assert spy.calls == 0, "the fast path handed the request to Flask"
    _same(fast, _flask_only(app, url))


@pytest.mark.parametrize("url", FLASK_PAGES)
def test_other_page_requests_reach_flask_unchanged(client, app, tokens, spy, url) -> None:
    url = url.format(**tokens)
    response = client.get(url)
    assert spy.calls == 1
    _same(response, _flask_only(app, url))


# --- batch reads (api.fast_batch) -----------------------------------------------------------


def _batch(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"tokens": list(entries)}


FAST_BATCHES = [
    _batch({"contract_id": "{nft}", "token_id": "1"}),
    _batch(
        {"contract_id": "{nft}", "token_id": 1},
        {"contract_id": "{ft}"},
        {"contract_id": "{sft}", "token_id": "0x1"},
        {"contract_id": "{nft}", "token_id": "9"},
        {"contract_id": MISSING_CONTRACT, "token_id": "1"},
        {"contract_id": "{nft}", "token_id": "3"},
        {"contract_id": "{nft}", "token_id": "2"},
    ),
    {"tokens": [{"contract_id": "{nft}", "token_id": str(n)} for n in range(100)]},
]
FLASK_BATCHES = [
    {"tokens": []},  # 400: too few
    {"tokens": [{"contract_id": "{nft}", "token_id": "1"}] * 101},  # 400: too many
    {"tokens": [{"contract_id": "{nft}", "token_id": "x"}]},
    {"tokens": [{"contract_id": "{nft}", "token_id": None}]},
    {"tokens": [{"contract_id": "{nft}", "token_id": True}]},
    {"tokens": [{"contract_id": "{nft}", "token_id": -1}]},
    {"tokens": [{"contract_id": "{nft}", "token_id": 2**128}]},
    {"tokens": [{"contract_id": "not-a-principal"}]},
    {"tokens": [{"contract_id": ["{nft}"], "token_id": "1"}]},  # not a string (nor hashable)
    {"tokens": [{"contract_id": {"a": 1}}]},
    {"tokens": [{"contract_id": 7}]},
    {"tokens": [{"token_id": "1"}]},
    {"tokens": [{"contract_id": "{nft}", "extra": 1}]},
    {"tokens": [{"contract_id": "{nft}"}], "extra": 1},
    {"tokens": "{nft}"},
    {},
    [],
]


def _format(body: Any, tokens: dict[str, str]) -> Any:
    if isinstance(body, str):
        return body.format(**tokens)
    if isinstance(body, list):
        return [_format(item, tokens) for item in body]
    if isinstance(body, dict):
        return {key: _format(value, tokens) for key, value in body.items()}
    return body


def _flask_only_post(app: Flask, url: str, **kwargs: Any) -> Response:
    fast = _fast_routes(app)
    flask = fast.app.app if isinstance(fast.app, _Spy) else fast.app
    return Client(AnyOrigin(flask), Response).post(url, **kwargs)


@pytest.mark.parametrize("body", FAST_BATCHES)
def test_batches_are_answered_on_the_fast_path_as_flask_does(
    client, app, tokens, spy, body
) -> None:
    body = _format(body, tokens)
    for url in ("/metadata/v1/tokens/batch", "/metadata/tokens/batch"):
        fast = client.post(url, json=body)
        assert fast.status_code == 200, fast.json
        _same(fast, _flask_only_post(app, url, json=body))
    assert spy.calls == 0, "the fast path handed the request to Flask"


@pytest.mark.parametrize("body", FLASK_BATCHES)
def test_other_batches_reach_flask_with_their_body(client, app, tokens, spy, body) -> None:
    body = _format(body, tokens)
    response = client.post("/metadata/v1/tokens/batch", json=body)
    assert spy.calls == 1
    assert response.status_code == 400
    _same(response, _flask_only_post(app, "/metadata/v1/tokens/batch", json=body))


@pytest.mark.parametrize(
    ("query", "headers", "data"),
    [
        ("?locale=en", {"Content-Type": "application/json"}, None),
        ("?include=raw", {"Content-Type": "application/json"}, None),
        ("", {"Content-Type": "text/plain"}, None),
        ("", {"Content-Type": "application/json"}, b'{"tokens": [{"contract_id": '),
    ],
)
def test_batches_the_fast_path_is_not_sure_of_reach_flask(
    client, app, tokens, spy, query, headers, data
) -> None:
    url = "/metadata/v1/tokens/batch" + query
    data = data or orjson.dumps({"tokens": [{"contract_id": tokens["nft"], "token_id": "1"}]})
    response = client.post(url, data=data, headers=headers)
    assert spy.calls == 1
    _same(response, _flask_only_post(app, url, data=data, headers=headers))
