"""`GET /sft/{principal}/{token_id}`: one SIP-013 token."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from api.caching import etag_response
from api.db import get_raw_reads
from api.encoders import json_response, sft_body
from api.resources.token_routes import token_route
from api.schemas.params import path_schema, principal_field
from api.schemas.responses import SftMetadataResponseSchema
from shared.services.token_reads import get_token

SftPathSchema = path_schema(
    "SftPathSchema",
    principal_field(
        "Semi-Fungible Token Contract Principal",
        "SIP-013 compliant smart contract principal",
        "SP3K8BC0PPEVCV7NZ6QSRWPQ2JE9E5B6N3PA0KBR9.key-alex-autoalex-v1",
    ),
    with_token_id=True,
)


def register(blp: Blueprint) -> None:
    @token_route(
        blp,
        "/sft/<principal>/<token_id>",
        SftPathSchema,
        SftMetadataResponseSchema,
        operationId="getSftMetadata",
        summary="Semi-Fungible Token Metadata",
        description="Retrieves metadata for a SIP-013 Semi-Fungible Token",
    )
    def get_sft_metadata(principal: str, token_id: int, locale: str | None = None) -> Response:
        token = get_token(get_raw_reads(), principal, token_id, locale)
        return etag_response(json_response(sft_body(token)), token.etag)
