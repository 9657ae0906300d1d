"""Every response of the API tests is checked against the reference OpenAPI document.

Statuses the reference does not document (400, unknown routes) are checked against our own
document instead; see tests/data/README.md for where the two knowingly differ.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.test import TestResponse

REFERENCE_DOCUMENT = (
    Path(__file__).resolve().parents[2] / "data" / "token-metadata-api.openapi.yaml"
)
REFERENCE_HOST = "https://api.hiro.so"  # the document's server: matched, never contacted
OUR_HOST = "http://localhost"
UNCHECKED_PATHS = ("/metrics", "/metadata/v1/openapi.json", "/metadata/v1/docs")
# The admin routes are operators' tools, deliberately left out of both documents.
UNCHECKED_PATHS += ("/metadata/v1/admin/", "/metadata/admin/")
# Swagger UI's script and styles (api/swagger_ui.py): files, in neither document.
UNCHECKED_PATHS += ("/metadata/v1/swagger-ui/",)
# The operator dashboard's page and its files (api/dashboard_page.py).
UNCHECKED_PATHS += ("/metadata/v1/dashboard",)


def _nullable(node: Any) -> Any:
    """The document's `type: "null"` (OpenAPI 3.1) as OpenAPI 3.0 reads it."""
    if isinstance(node, dict):
        if node == {"type": "null"}:
            return {"nullable": True, "enum": [None]}
        return {key: _nullable(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    return node


def load_reference() -> OpenAPI:
    document = _nullable(yaml.safe_load(REFERENCE_DOCUMENT.read_text()))
    return OpenAPI.from_dict(document, config=_unchecked_structure())


def load_ours(document: dict[str, Any]) -> OpenAPI:
    """Ours must also pass the OpenAPI 3.0 structure check (the default)."""
    return OpenAPI.from_dict(document)


def _unchecked_structure() -> Any:
    from openapi_core import Config

    return Config(spec_validator_cls=None)


def documented_path(path: str) -> str:
    """`/metadata/x` is the same route as `/metadata/v1/x`; the documents know only the latter."""
    if path in ("/metadata", "/metadata/", "/metadata/v1"):
        return "/metadata/v1/"
    if path.startswith("/metadata/") and not path.startswith("/metadata/v1/"):
        return "/metadata/v1/" + path[len("/metadata/") :]
    return path


class ResponseChecker:
    def __init__(self, reference: OpenAPI, ours: OpenAPI) -> None:
        self.reference = reference
        self.ours = ours
        self.checked = 0

    def check(self, response: TestResponse) -> None:
        request = response.request
        if request.method in ("OPTIONS", "HEAD") or request.path.startswith(UNCHECKED_PATHS):
            return
        if response.status_code == 304:
            assert response.get_data() == b"", "a 304 has no body"
            return
        body = response.get_data()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if response.status_code in (404, 405) and b'"statusCode"' in body:
            # No route matched (a documented path template may still match, e.g. with an
            # empty parameter): the body is Fastify's, which neither document describes.
            assert json.loads(body) == {
                "message": f"Route {request.method}:{request.path} not found",
                "error": "Not Found",
                "statusCode": 404,
            }
            return
        path = documented_path(request.path)
        mock = MockResponse(body, status_code=response.status_code, content_type=response.mimetype)
        try:
            self._validate(self.reference, REFERENCE_HOST, request, path, mock)
        except (PathNotFound, OperationNotFound, ResponseNotFound):
            # Our own routes (docs/marketplace-api.md) and statuses: our document only.
            try:
                self._validate(self.ours, OUR_HOST, request, path, mock)
            except (PathNotFound, OperationNotFound):
                message = f"{request.method} {request.path} answered like a route"
                raise AssertionError(message) from None
        self.checked += 1

    @staticmethod
    def _validate(api: OpenAPI, host: str, request: Any, path: str, mock: MockResponse) -> None:
        mock_request = MockRequest(host, request.method.lower(), path, args=request.args)
        api.validate_response(mock_request, mock)
