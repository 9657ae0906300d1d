"""`GET /{nft,sft}/{principal}/{token_id}/history` and `GET /ft/{principal}/history`: a
token's job as it stands and its newest fetch attempts (docs/fetch-history.md#routes).

Path parameters are the detail routes' own schemas (`api.routes`), so a malformed principal
or token id is the same 400; an unknown contract or token the same 404 (`api.errors`).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint

from api.db import get_raw_reads
from api.encoders import json_response
from api.routes import TOKEN_ROUTES, TokenRoute
from api.schemas.history import TokenHistorySchema
from api.schemas.responses import NOT_FOUND_RESPONSE
from shared.config import Settings
from shared.reads.history import get_token_history

_BAD_REQUEST: dict[str, Any] = {"error_status_code": 400}


def register(blp: Blueprint) -> None:
    for route in TOKEN_ROUTES:
        _register_history(blp, route)


def token_history(principal: str, token_number: int) -> Response:
    settings: Settings = current_app.extensions["token_metadata_settings"]
    history = get_token_history(
        get_raw_reads(), principal, token_number, settings.metadata_dynamic_token_refresh_interval
    )
    return json_response({"job": history.job, "attempts": history.attempts})


def _register_history(blp: Blueprint, route: TokenRoute) -> None:
    def view(principal: str, token_id: int | None = None) -> Response:
        number = route.token_number if token_id is None else token_id
        if number is None:
            raise TypeError(f"/{route.kind}: a token id or a fixed token number is needed")
        return token_history(principal, number)

    view.__name__ = view.__qualname__ = f"get_{route.kind}_history"
    for wrap in (
        blp.doc(
            operationId=f"get{route.kind.capitalize()}History",
            summary=f"{route.summary} Fetch History",
            description="The token's job as it stands and its newest metadata and image "
            "fetch attempts, newest first: when, why, the URL, the answer and how it ended.",
        ),
        blp.alt_response(404, schema=NOT_FOUND_RESPONSE, description="Contract or token not found"),
        blp.response(200, TokenHistorySchema, description="The token's job and attempts"),
        blp.arguments(route.path(), location="path", as_kwargs=True, **_BAD_REQUEST),
        blp.route(f"{route.rule}/history"),
    ):
        view = wrap(view)
