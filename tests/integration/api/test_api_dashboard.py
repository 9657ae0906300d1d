"""`GET /metadata/v1/admin/dashboard` and the page that shows it (docs/dashboard.md): the
route behind the admin token, the page's files with their types and Content-Security-Policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from integration.api.conftest import CheckedClient
from integration.api.openapi_check import ResponseChecker
from integration.api.test_api_admin import AUTH, TOKEN, make_client
from support.builders import add_contract, add_token

from api.dashboard_page import ASSETS, ASSETS_DIR
from api.schemas.dashboard import DashboardSchema
from shared.config import Settings
from shared.models import JobStatus

PAGE = "/metadata/v1/dashboard"
ROUTE = "/metadata/v1/admin/dashboard"


@pytest.fixture
def admin(settings: Settings, openapi_checker: ResponseChecker) -> Iterator[CheckedClient]:
    yield from make_client(replace(settings, admin_api_token=TOKEN), openapi_checker)


def test_the_dashboard_route_answers_every_section(admin: CheckedClient, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        add_token(s, contract, 1, job_status=JobStatus.PENDING)
        add_token(s, contract, 2, job_status=JobStatus.INVALID, invalid_reason=107)
        add_token(s, contract, 3)
    response = admin.get(ROUTE, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert DashboardSchema().validate(body) == {}
    assert set(body) == {
        "generated_at",
        "index",
        "contracts",
        "throughput",
        "failures",
        "rate_limited_hosts",
        "host_slots",
        "queues",
    }
    assert body["index"]["tokens"] == {"total": 3, "finished": 2}
    [bar] = body["contracts"]
    assert bar["contract_id"] == contract.principal
    assert bar["tokens"]["total"] == 3
    assert len(body["throughput"]["minutes"]) == 60
    assert body["throughput"]["total"] == 3  # the builders mark every token fetched now
    assert body["failures"]["by_reason"][0]["code"] == 107
    assert body["rate_limited_hosts"] == {"total": 0, "hosts": []}
    assert body["host_slots"]["error"] is None
    assert set(body["queues"]["broker"]) >= {"tokens", "contracts"}
    assert body["queues"]["token_jobs"]["pending"] == 1


def test_the_dashboard_route_needs_the_token(admin: CheckedClient) -> None:
    response = admin.get(ROUTE, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_no_page_without_an_admin_token(client: CheckedClient) -> None:
    assert client.get(PAGE).status_code == 404


class Loaded(HTMLParser):
    """The page's `<script src>`, `<link href>`, and whether it has inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self._in_script = True
            self.urls.append(values["src"] or "")
        if tag == "link" and values.get("rel") == "stylesheet":
            self.urls.append(values["href"] or "")
        if any(name.startswith("on") for name in values):
            self.inline_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        self.inline_script = self.inline_script or (self._in_script and bool(data.strip()))


def test_the_page_is_public_same_origin_and_strictly_confined(admin: CheckedClient) -> None:
    with admin.get(PAGE) as response:  # no token: the page holds no data
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "form-action 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert not re.search(r"https?://", page)
    loaded = Loaded()
    loaded.feed(page)
    assert not loaded.inline_script
    assert len(loaded.urls) == 2
    for url in loaded.urls:
        assert urlsplit(url).netloc == ""
        assert url.startswith(PAGE + "/assets/")


def test_every_asset_is_served_with_its_type_and_nothing_else_is(admin: CheckedClient) -> None:
    assert {path.name for path in ASSETS_DIR.iterdir()} == {*ASSETS, "index.html"}
    for name, mimetype in ASSETS.items():
        with admin.get(f"{PAGE}/assets/{name}") as response:
            assert response.status_code == 200, name
            assert response.mimetype == mimetype
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.get_data() == (ASSETS_DIR / name).read_bytes()
    for name in ("index.html", "..%2Fdashboard_page.py", "missing.js"):
        with admin.get(f"{PAGE}/assets/{name}") as response:
            assert response.status_code == 404, name


def test_the_script_never_writes_html(admin: CheckedClient) -> None:
    """Token metadata is untrusted: strings go in as text nodes only."""
    for name in ASSETS:
        source = (ASSETS_DIR / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"
