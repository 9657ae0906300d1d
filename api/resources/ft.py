"""`GET /ft`: the list of fungible tokens (`GET /ft/{principal}` is declared in `api.routes`)."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_smorest import Blueprint

from api.caching import cacheable_answer, to_response
from api.db import get_raw_reads
from api.encoders import ft_list_body
from api.schemas.params import FtListQuerySchema
from api.schemas.responses import PaginatedFtBasicMetadataResponseSchema
from shared.reads.ft_list import FtListQuery, list_fungible_tokens


def register(blp: Blueprint) -> None:
    @blp.route("/ft")
    @blp.arguments(FtListQuerySchema(), location="query", error_status_code=400)
    @blp.response(200, PaginatedFtBasicMetadataResponseSchema, description="Default Response")
    @blp.doc(
        operationId="getFungibleTokens",
        summary="Fungible Tokens",
        description="Retrieves a list of Fungible Tokens",
    )
    def get_fungible_tokens(args: dict[str, Any]) -> Response:
        query = FtListQuery(**args)
        page = list_fungible_tokens(get_raw_reads(), query)
        body = ft_list_body(query, page)
        return to_response(cacheable_answer(body, page.etag, request.headers.get("If-None-Match")))
