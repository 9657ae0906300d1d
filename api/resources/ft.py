"""`GET /ft` (the FT list) and `GET /ft/{principal}` (one SIP-010 token, always number 1)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from api.caching import answers_304, etag_response
from api.db import get_raw_reads
from api.encoders import ft_body, ft_list_body, json_response
from api.resources.token_routes import token_route
from api.schemas.params import FtListQuerySchema, path_schema, principal_field
from api.schemas.responses import FtMetadataResponseSchema, PaginatedFtBasicMetadataResponseSchema
from shared.services.ft_list import FtListQuery, list_fungible_tokens
from shared.services.token_reads import get_token

FT_TOKEN_NUMBER = 1

FtPathSchema = path_schema(
    "FtPathSchema",
    principal_field(
        "Fungible Token Contract Principal",
        "Principal for the contract which owns the SIP-010 token",
        "SP32XCD69XPS3GKDEXAQ29PJRDSD5AR643GNEEBXZ.fari-token",
    ),
    with_token_id=False,
)


def register(blp: Blueprint) -> None:
    @blp.route("/ft")
    @blp.arguments(FtListQuerySchema(), location="query", error_status_code=400)
    @blp.response(200, PaginatedFtBasicMetadataResponseSchema, description="Default Response")
    @blp.doc(
        operationId="getFungibleTokens",
        summary="Fungible Tokens",
        description="Retrieves a list of Fungible Tokens",
    )
    @answers_304
    def get_fungible_tokens(args: dict[str, Any]) -> Response:
        query = FtListQuery(**args)
        page = list_fungible_tokens(get_raw_reads(), query)
        return etag_response(json_response(ft_list_body(query, page)), page.etag)

    @token_route(
        blp,
        "/ft/<principal>",
        FtPathSchema,
        FtMetadataResponseSchema,
        operationId="getFtMetadata",
        summary="Fungible Token Metadata",
        description="Retrieves metadata for a SIP-010 Fungible Token",
    )
    def get_ft_metadata(principal: str, locale: str | None = None) -> Response:
        token = get_token(get_raw_reads(), principal, FT_TOKEN_NUMBER, locale)
        return etag_response(json_response(ft_body(token)), token.etag)
