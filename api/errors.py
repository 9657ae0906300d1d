"""Domain errors and bad requests become the reference's JSON error bodies."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from api.encoders import json_response
from api.schemas.messages import validation_message
from shared.reads.tokens import (
    ContractNotFound,
    LocaleNotFound,
    MetadataFetchInProgress,
    TokenInvalid,
    TokenLookupError,
    TokenNotFound,
)


def init_app(app: Flask) -> None:
    app.register_error_handler(TokenLookupError, token_lookup_error)
    app.register_error_handler(HTTPException, http_error)


def token_lookup_error(exc: TokenLookupError) -> Response:
    """Hiro's API's 404/422 bodies for a token lookup; errors never get caching headers."""
    return json_response(*token_error_body(exc))


def token_error_body(exc: TokenLookupError) -> tuple[dict[str, str], int]:
    if isinstance(exc, ContractNotFound):
        return {"error": "Contract not found"}, 404
    if isinstance(exc, TokenNotFound):
        return {"error": "Token not found"}, 404
    if isinstance(exc, LocaleNotFound):
        return {"error": "Locale not found"}, 422
    if isinstance(exc, MetadataFetchInProgress):
        return {"error": "Token metadata fetch in progress"}, 422
    if isinstance(exc, TokenInvalid):
        return {"error": "Token error", "message": exc.message}, 422
    return {"error": "Unknown error"}, 500


def http_error(exc: HTTPException) -> Response:
    """Fastify's bodies; a route without the method is a 404 there, as an unknown route."""
    code = exc.code or 500
    if code in (404, 405):
        message = f"Route {request.method}:{request.path} not found"
        return json_response({"message": message, "error": "Not Found", "statusCode": 404}, 404)
    body: dict[str, Any] = {"statusCode": code}
    messages = getattr(exc, "data", {}).get("messages") if hasattr(exc, "data") else None
    if code == 400 and messages:
        body["code"] = "FST_ERR_VALIDATION"
        body["error"] = exc.name
        body["message"] = validation_message(messages)
    else:
        body["error"] = exc.name
        body["message"] = exc.description or exc.name
    return json_response(body, code)
