"""Our OpenAPI document: served, valid, and named as the reference's (operation ids, titles)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from integration.api.openapi_check import REFERENCE_DOCUMENT, ResponseChecker
from openapi_core.validation.response.exceptions import InvalidData
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder, TestResponse


def titles(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("title"), str):
            yield node["title"]
        for value in node.values():
            yield from titles(value)
    elif isinstance(node, list):
        for item in node:
            yield from titles(item)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (path, method): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return yaml.safe_load(REFERENCE_DOCUMENT.read_text())


def test_document_is_served_with_the_reference_s_operations_and_titles(client, reference):
    response = client.get("/metadata/v1/openapi.json")
    assert response.status_code == 200
    ours = response.json
    assert ours["openapi"] == "3.0.3"
    assert ours["info"]["title"] == reference["info"]["title"]
    assert ours["info"]["version"] == reference["info"]["version"]
    # Every reference operation, as it is; ours beside them are tagged Marketplace or Changes.
    reference_operations = operations(reference)
    assert {key: operations(ours)[key] for key in reference_operations} == reference_operations
    for path, method in operations(ours).keys() - reference_operations.keys():
        tags = ours["paths"][path][method]["tags"]
        assert tags in (["Marketplace"], ["Changes"]), (path, method)
    assert set(titles(reference)) <= set(titles(ours))
    assert [tag["name"] for tag in ours["tags"]] == ["Tokens", "Marketplace", "Changes", "Status"]


def test_parameters_are_documented_once_per_operation(client) -> None:
    ours = client.get("/metadata/v1/openapi.json").json
    nft = ours["paths"]["/metadata/v1/nft/{principal}/{token_id}"]
    assert "parameters" not in nft
    names = [(p["in"], p["name"]) for p in nft["get"]["parameters"]]
    assert sorted(names) == [("path", "principal"), ("path", "token_id"), ("query", "locale")]
    assert nft["get"]["responses"]["400"] == {"$ref": "#/components/responses/BAD_REQUEST"}


def test_interactive_docs_page_points_at_the_document(client) -> None:
    response = client.get("/metadata/v1/docs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page
    assert "/metadata/v1/openapi.json" in page


def test_the_checker_rejects_a_body_the_reference_does_not_allow(
    openapi_checker: ResponseChecker,
) -> None:
    """The suite's response validation would notice a wrong body (guards the guard)."""
    url = "/metadata/v1/nft/SP2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS.hello/1"
    for status, body in ((200, b'{"token_uri": 5}'), (404, b'{"error": "Gone"}')):
        headers = Headers({"Content-Type": "application/json"})
        response = TestResponse([body], str(status), headers, _request(url))
        with pytest.raises(InvalidData):
            openapi_checker.check(response)


def _request(url: str) -> Any:
    return EnvironBuilder(url, method="GET").get_request()
