"""Webhook subscription admin routes (docs/webhooks.md#subscriptions): behind the admin
bearer token, on the real Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from integration.api.conftest import CheckedClient
from integration.api.openapi_check import ResponseChecker
from integration.api.test_api_admin import make_client
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from shared.changes import entry, record
from shared.config import Settings
from shared.db import session_scope
from shared.models import ChangeKind

TOKEN = "admin-token-for-webhook-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "a-secret-of-at-least-16"
PRINCIPAL = "SP2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS.hello"
FIELDS = {
    "id",
    "url",
    "contracts",
    "kinds",
    "status",
    "paused_reason",
    "last_delivered_id",
    "attempts",
    "last_error",
    "failing_since",
    "next_attempt_at",
    "created_at",
    "updated_at",
}


@pytest.fixture
def admin(settings: Settings, openapi_checker: ResponseChecker) -> Iterator[CheckedClient]:
    yield from make_client(replace(settings, admin_api_token=TOKEN), openapi_checker)


def create(admin: CheckedClient, **body: Any) -> Any:
    body = {"url": "https://example.com/hook", "secret": SECRET, **body}
    return admin.post("/metadata/v1/admin/webhooks", json=body, headers=AUTH)


def test_creating_a_subscription_answers_201_with_it_and_never_the_secret(
    admin: CheckedClient, db: sessionmaker[Session]
) -> None:
    with session_scope(db) as session:
        record(session, [entry(ChangeKind.TOKEN_ADDED, PRINCIPAL, 1)])
    with session_scope(db) as session:
        latest = session.execute(text("SELECT max(id) FROM changes")).scalar_one()

    response = create(admin, contracts=[PRINCIPAL], kinds=["token_added", "owner_changed"])

    assert response.status_code == 201
    body = response.json
    assert set(body) == FIELDS
    assert SECRET not in response.get_data(as_text=True)
    assert body["url"] == "https://example.com/hook"
    assert body["contracts"] == [PRINCIPAL]
    assert body["kinds"] == ["token_added", "owner_changed"]
    assert (body["status"], body["attempts"]) == ("active", 0)
    assert body["last_delivered_id"] == latest  # from its creation on
    assert response.headers["Cache-Control"] == "no-store"
    assert create(admin, after=0).json["last_delivered_id"] == 0
    plain = create(admin).json
    assert (plain["contracts"], plain["kinds"]) == (None, None)


def test_list_pause_resume_delete_and_deliveries(admin: CheckedClient) -> None:
    first, second = create(admin).json, create(admin, url="http://hooks.example/b").json
    prefix = "/metadata/v1/admin/webhooks"

    listed = admin.get(prefix, headers=AUTH)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json["results"]] == [first["id"], second["id"]]
    assert SECRET not in listed.get_data(as_text=True)

    paused = admin.post(f"{prefix}/{first['id']}/pause", headers=AUTH)
    assert paused.status_code == 200
    assert (paused.json["status"], paused.json["paused_reason"]) == (
        "paused",
        "Paused by an administrator",
    )
    resumed = admin.post(f"{prefix}/{first['id']}/resume", headers=AUTH)
    assert (resumed.json["status"], resumed.json["paused_reason"]) == ("active", None)
    assert admin.get(f"{prefix}/{first['id']}", headers=AUTH).json["id"] == first["id"]

    deliveries = admin.get(f"{prefix}/{first['id']}/deliveries", headers=AUTH)
    assert (deliveries.status_code, deliveries.json) == (200, {"results": []})

    deleted = admin.delete(f"{prefix}/{first['id']}", headers=AUTH)
    assert deleted.status_code == 204
    assert [s["id"] for s in admin.get(prefix, headers=AUTH).json["results"]] == [second["id"]]
    # The reference's own admin prefix answers too.
    assert admin.get("/metadata/admin/webhooks", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("DELETE", ""),
        ("GET", ""),
        ("GET", "/deliveries"),
    ],
)
def test_an_unknown_subscription_is_a_404(admin: CheckedClient, method: str, path: str) -> None:
    for subscription_id in (123456, 2**64):
        response = admin.open(
            f"/metadata/v1/admin/webhooks/{subscription_id}{path}", method=method, headers=AUTH
        )
        assert response.status_code == 404, (method, path)
        assert response.json == {"error": "Webhook subscription not found"}


BAD_BODIES = [
    ({"secret": SECRET}, "body/url must have required property 'url'"),
    ({"url": "ftp://example.com/x", "secret": SECRET}, "body/url must be an http(s) URL"),
    ({"url": "https:///nohost", "secret": SECRET}, "body/url must be an http(s) URL"),
    ({"url": "not a url", "secret": SECRET}, "body/url must be an http(s) URL"),
    ({"url": 5, "secret": SECRET}, "body/url must be string"),
    ({"url": "https://example.com"}, "body/secret must have required property 'secret'"),
    ({"url": "https://example.com", "secret": "short"}, "body/secret must NOT have fewer"),
    ({"url": "https://example.com", "secret": SECRET, "kinds": ["nope"]}, "body/kinds/0 must"),
    ({"url": "https://example.com", "secret": SECRET, "kinds": "token_added"}, "body/kinds must"),
    ({"url": "https://example.com", "secret": SECRET, "contracts": ["x"]}, "body/contracts/0"),
    ({"url": "https://example.com", "secret": SECRET, "contracts": []}, "body/contracts must"),
    ({"url": "https://example.com", "secret": SECRET, "after": -1}, "body/after must be >= 0"),
    ({"url": "https://example.com", "secret": SECRET, "after": "1"}, "body/after must be int"),
    (["https://example.com"], "body must be object"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_a_malformed_body_is_a_400_naming_the_field(
    admin: CheckedClient, body: Any, message: str
) -> None:
    response = admin.post("/metadata/v1/admin/webhooks", json=body, headers=AUTH)
    assert response.status_code == 400, body
    assert response.json["code"] == "FST_ERR_VALIDATION"
    assert response.json["message"].startswith(message), response.json["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", ""),
        ("GET", ""),
        ("POST", "/1/pause"),
        ("POST", "/1/resume"),
        ("DELETE", "/1"),
        ("GET", "/1/deliveries"),
    ],
)
def test_without_the_bearer_token_every_route_is_401(
    admin: CheckedClient, method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        response = admin.open(
            f"/metadata/v1/admin/webhooks{path}",
            method=method,
            json={"url": "https://example.com", "secret": SECRET},
            headers=headers,
        )
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_routes_are_404_without_an_admin_token(client: CheckedClient) -> None:
    assert client.get("/metadata/v1/admin/webhooks").status_code == 404


def test_the_routes_are_not_in_the_public_openapi_document(client: CheckedClient) -> None:
    paths = client.get("/metadata/v1/openapi.json").json["paths"]
    assert not any("webhooks" in path for path in paths)
