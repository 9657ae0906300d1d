"""Domain errors and bad requests become the reference's JSON error bodies."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from shared.services.token_reads import (
    ContractNotFound,
    LocaleNotFound,
    MetadataFetchInProgress,
    TokenInvalid,
    TokenLookupError,
    TokenNotFound,
)

LOCATION_NAMES = {"path": "params", "query": "querystring", "json": "body"}


def init_app(app: Flask) -> None:
    app.register_error_handler(TokenLookupError, token_lookup_error)
    app.register_error_handler(HTTPException, http_error)


def token_lookup_error(exc: TokenLookupError) -> tuple[Response, int]:
    if isinstance(exc, ContractNotFound):
        return jsonify(error="Contract not found"), 404
    if isinstance(exc, TokenNotFound):
        return jsonify(error="Token not found"), 404
    if isinstance(exc, LocaleNotFound):
        return jsonify(error="Locale not found"), 422
    if isinstance(exc, MetadataFetchInProgress):
        return jsonify(error="Token metadata fetch in progress"), 422
    if isinstance(exc, TokenInvalid):
        return jsonify(error="Token error", message=exc.message), 422
    return jsonify(error="Unknown error"), 500


def http_error(exc: HTTPException) -> tuple[Response, int]:
    code = exc.code or 500
    if code == 404:
        return jsonify(
            message=f"Route {request.method}:{request.path} not found",
            error="Not Found",
            statusCode=404,
        ), 404
    body: dict[str, Any] = {"statusCode": code, "error": exc.name}
    messages = getattr(exc, "data", {}).get("messages") if hasattr(exc, "data") else None
    if code == 400 and messages:
        body["code"] = "FST_ERR_VALIDATION"
        body["message"] = validation_message(messages)
    else:
        body["message"] = exc.description or exc.name
    return jsonify(body), code


def validation_message(messages: dict[str, dict[str, Any]]) -> str:
    """`params/principal must match pattern ...`: the part, the field, what is wrong."""
    parts = []
    for location, fields in messages.items():
        for field, errors in fields.items():
            text = errors[0] if isinstance(errors, list) and errors else str(errors)
            parts.append(f"{LOCATION_NAMES.get(location, location)}/{field} {text}")
    return "; ".join(parts)
