"""What the three single-token routes share: parameters, error responses, ETag, documentation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema

from api.caching import answers_304
from api.schemas.params import LocaleQuerySchema
from api.schemas.responses import NOT_FOUND_RESPONSE, TOKEN_ERROR_RESPONSE

View = Callable[..., Response]
_BAD_REQUEST: dict[str, Any] = {"error_status_code": 400}


def token_route(
    blp: Blueprint, rule: str, path: type[Schema], response: type[Schema], **doc: str
) -> Callable[[View], View]:
    """Validated path and `?locale=`, the reference's 404/422 bodies documented, ETag per token
    (the view answers `etag_response(..., token.etag)`)."""

    def decorator(view: View) -> View:
        for wrap in (
            answers_304,
            blp.doc(**doc),
            blp.alt_response(422, schema=TOKEN_ERROR_RESPONSE, description="Default Response"),
            blp.alt_response(404, schema=NOT_FOUND_RESPONSE, description="Default Response"),
            blp.response(200, response, description="Default Response"),
            blp.arguments(LocaleQuerySchema(), location="query", as_kwargs=True, **_BAD_REQUEST),
            blp.arguments(path(), location="path", as_kwargs=True, **_BAD_REQUEST),
            blp.route(rule),
        ):
            view = wrap(view)
        return view

    return decorator
