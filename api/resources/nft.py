"""`GET /nft/{principal}/{token_id}`: one SIP-009 token."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from api.caching import etag_response
from api.db import get_raw_reads
from api.encoders import json_response, nft_body
from api.resources.token_routes import token_route
from api.schemas.params import path_schema, principal_field
from api.schemas.responses import NftMetadataResponseSchema
from shared.services.token_reads import get_token

NftPathSchema = path_schema(
    "NftPathSchema",
    principal_field(
        "Non-Fungible Token Contract Principal",
        "SIP-009 compliant smart contract principal",
        "SP497E7RX3233ATBS2AB9G4WTHB63X5PBSP5VGAQ.boomboxes-cycle-12",
    ),
    with_token_id=True,
)


def register(blp: Blueprint) -> None:
    @token_route(
        blp,
        "/nft/<principal>/<token_id>",
        NftPathSchema,
        NftMetadataResponseSchema,
        operationId="getNftMetadata",
        summary="Non-Fungible Token Metadata",
        description="Retrieves metadata for a SIP-009 Non-Fungible Token",
    )
    def get_nft_metadata(principal: str, token_id: int, locale: str | None = None) -> Response:
        token = get_token(get_raw_reads(), principal, token_id, locale)
        return etag_response(json_response(nft_body(token)), token.etag)
