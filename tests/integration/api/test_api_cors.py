"""CORS as Hiro's API sends it: the defaults of its `@fastify/cors`."""

from __future__ import annotations

from support.builders import add_contract, add_token, new_principal


def test_every_response_allows_any_origin(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract)
    urls = (
        "/metadata/v1/",
        f"/metadata/v1/nft/{contract.principal}/1",
        f"/metadata/v1/nft/{new_principal()}/1",
        "/metadata/v1/ft?limit=100",
        "/metadata/nowhere",
        "/metadata/v1/openapi.json",
    )
    for url in urls:
        response = client.get(url, headers={"Origin": "https://wallet.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "*", url
    etag = client.get("/metadata/v1/").headers["ETag"]
    not_modified = client.get("/metadata/v1/", headers={"If-None-Match": etag})
    assert not_modified.headers["Access-Control-Allow-Origin"] == "*"


def test_preflight_is_answered_on_any_path(client) -> None:
    for url in ("/metadata/v1/ft", "/metadata/nft/x/1", "/anything"):
        response = client.options(
            url,
            headers={
                "Origin": "https://wallet.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-api-key, if-none-match",
            },
        )
        assert (response.status_code, response.get_data()) == (204, b""), url
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Access-Control-Allow-Methods"] == "GET,HEAD,PUT,PATCH,POST,DELETE"
        assert response.headers["Access-Control-Allow-Headers"] == "x-api-key, if-none-match"


def test_an_options_request_that_is_no_preflight_is_refused(client) -> None:
    response = client.options("/metadata/v1/ft")
    assert (response.status_code, response.get_data()) == (400, b"Invalid Preflight Request")
