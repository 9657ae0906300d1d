"""`GET /metadata/v1/nft/{principal}/{token_id}`: one SIP-009 token."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from api.db import get_session
from api.schemas.params import LocaleQuerySchema, TokenPathSchema
from api.schemas.responses import NftMetadataResponseSchema
from shared.services.token_reads import get_token


def make_blueprint(suffix: str) -> Blueprint:
    blp = Blueprint(f"nft_{suffix}", __name__, description="Token metadata endpoints")

    @blp.route("/nft/<principal>/<token_id>")
    @blp.arguments(TokenPathSchema, location="path", error_status_code=400, as_kwargs=True)
    @blp.arguments(LocaleQuerySchema, location="query", error_status_code=400, as_kwargs=True)
    @blp.response(200, NftMetadataResponseSchema)
    @blp.doc(operationId="getNftMetadata", summary="Non-Fungible Token Metadata", tags=["Tokens"])
    def get_nft(principal: str, token_id: int, locale: str | None) -> dict[str, Any]:
        """Retrieves metadata for a SIP-009 Non-Fungible Token."""
        token = get_token(get_session(), principal, token_id, locale)
        body: dict[str, Any] = {}
        if token.uri is not None:
            body["token_uri"] = token.uri
        if token.metadata is not None:
            body["metadata"] = token.metadata
        return body

    return blp
