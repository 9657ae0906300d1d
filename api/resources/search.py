"""`GET /search?contract=...`: up to 50 tokens in one request, in request order."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from api.caching import revalidated
from api.db import get_session
from api.encoders import json_response, search_body
from api.schemas.params import SearchQuerySchema
from api.schemas.responses import SEARCH_RESPONSE
from shared.services.search import TokenKey, search_etag, search_tokens


def _etag(session: Any, contract: list[str], **_: Any) -> str | None:
    return search_etag(session, [TokenKey.parse(identifier) for identifier in contract])


def register(blp: Blueprint) -> None:
    @blp.route("/search")
    @blp.arguments(SearchQuerySchema(), location="query", as_kwargs=True, error_status_code=400)
    @blp.response(200, SEARCH_RESPONSE, description="Default Response")
    @blp.doc(
        operationId="searchTokens",
        summary="Search Tokens",
        description="Retrieves metadata for multiple tokens in a single request. "
        "Accepts up to 50 contract identifiers.",
    )
    @revalidated(_etag)
    def search_tokens_by_identifier(contract: list[str], locale: str | None = None) -> Response:
        keys = [TokenKey.parse(identifier) for identifier in contract]
        return json_response(search_body(search_tokens(get_session(), keys, locale)))
