"""`GET /search?contract=...`: up to 50 tokens in one request, in request order."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from api.caching import answers_304, etag_response
from api.db import get_raw_reads
from api.encoders import json_response, search_body
from api.schemas.params import SearchQuerySchema
from api.schemas.responses import SEARCH_RESPONSE
from shared.services.search import TokenKey, search_tokens


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
    @answers_304
    def search_tokens_by_identifier(contract: list[str], locale: str | None = None) -> Response:
        keys = [TokenKey.parse(identifier) for identifier in contract]
        found = search_tokens(get_raw_reads(), keys, locale)
        return etag_response(json_response(search_body(found.hits)), found.etag)
