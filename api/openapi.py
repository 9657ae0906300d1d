"""The OpenAPI document of our API at `/metadata/v1/openapi.json`, with Swagger UI beside it.

Swagger UI (`/metadata/v1/docs`) loads its script and styles from the API (`api.swagger_ui`).
"""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api

from api import swagger_ui
from api.schemas.marketplace import TokenId
from api.schemas.responses import ValidationErrorSchema

PREFIX = "/metadata/v1"


class OperationPathParameters(BasePlugin):  # type: ignore[misc]  # apispec is untyped here
    """Path parameters are documented once, per operation, from the views' schemas.

    Flask's rule would add an untyped copy of each at the path level.
    """

    def path_helper(self, parameters: list[dict[str, Any]], **_: Any) -> None:
        parameters[:] = [p for p in parameters if p.get("in") != "path"]


class TokenMetadataApi(Api):  # type: ignore[misc]  # flask-smorest is untyped
    ERROR_SCHEMA = ValidationErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        """api.errors answers every error with the reference's bodies."""


def make_api(app: Flask, version: str) -> Api:
    app.config.update(
        API_TITLE="Token Metadata API",
        API_VERSION=version,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=swagger_ui.install(app, PREFIX),
        # No validator badge: it would load an image from the validator's site.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        API_SPEC_OPTIONS={
            "info": {
                "description": "Service that indexes metadata for every SIP-009, SIP-010, and "
                "SIP-013 Token in the Stacks blockchain and exposes it via REST API endpoints."
            },
        },
    )
    api = TokenMetadataApi(app, spec_kwargs={"extra_plugins": [OperationPathParameters()]})
    api.register_field(TokenId, "string", None)
    return api
