"""The flask-smorest views of the declared token routes and `/search` (`api.routes`).

Most requests to these routes are answered by the fast path (`api.fast_routes`) before they
reach Flask. These views answer the rest (`?locale=`, invalid parameters, HEAD) and document
every route in the OpenAPI document. They answer through the same `answer` method, so the
two paths cannot give different answers.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_smorest import Blueprint

from api.caching import to_response
from api.db import get_raw_reads
from api.routes import SearchRoute, TokenRoute
from api.schemas.params import LocaleQuerySchema, SearchQuerySchema
from api.schemas.responses import NOT_FOUND_RESPONSE, SEARCH_RESPONSE, TOKEN_ERROR_RESPONSE

_BAD_REQUEST: dict[str, Any] = {"error_status_code": 400}


def register_token_route(blp: Blueprint, route: TokenRoute) -> None:
    """Validated path and `?locale=`, the 404/422 error bodies documented."""

    def view(principal: str, token_id: int | None = None, locale: str | None = None) -> Response:
        if_none_match = request.headers.get("If-None-Match")
        return to_response(
            route.answer(get_raw_reads(), principal, token_id, locale, if_none_match)
        )

    view.__name__ = view.__qualname__ = route.endpoint
    for wrap in (
        blp.doc(
            operationId=route.operation_id, summary=route.summary, description=route.description
        ),
        blp.alt_response(422, schema=TOKEN_ERROR_RESPONSE, description="Default Response"),
        blp.alt_response(404, schema=NOT_FOUND_RESPONSE, description="Default Response"),
        blp.response(200, route.response, description="Default Response"),
        blp.arguments(LocaleQuerySchema(), location="query", as_kwargs=True, **_BAD_REQUEST),
        blp.arguments(route.path(), location="path", as_kwargs=True, **_BAD_REQUEST),
        blp.route(route.rule),
    ):
        view = wrap(view)


def register_search_route(blp: Blueprint, route: SearchRoute) -> None:
    def view(contract: list[str], locale: str | None = None) -> Response:
        if_none_match = request.headers.get("If-None-Match")
        return to_response(route.answer(get_raw_reads(), contract, locale, if_none_match))

    view.__name__ = view.__qualname__ = route.endpoint
    for wrap in (
        blp.doc(
            operationId=route.operation_id, summary=route.summary, description=route.description
        ),
        blp.response(200, SEARCH_RESPONSE, description="Default Response"),
        blp.arguments(SearchQuerySchema(), location="query", as_kwargs=True, **_BAD_REQUEST),
        blp.route(route.rule),
    ):
        view = wrap(view)
