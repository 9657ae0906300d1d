"""Response schemas for the OpenAPI document, titled as in the reference document (v2.2.1).

The views serialise their bodies themselves (see `api.encoders`); these schemas only describe
them. Error bodies that are a choice of shapes are plain OpenAPI dicts.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

URI_DOC = {"format": "uri"}


def _uri(description: str) -> fields.String:
    return fields.String(metadata={**URI_DOC, "description": description})


class MetadataAttributeSchema(Schema):
    class Meta:
        title = "Metadata Attribute"

    trait_type = fields.String(required=True, metadata={"example": "Background"})
    display_type = fields.String(metadata={"example": "string"})
    value = fields.Raw(required=True, metadata={"title": "Metadata Value", "example": "value"})


class MetadataLocalizationSchema(Schema):
    class Meta:
        title = "Metadata Localization"

    uri = fields.String(required=True, metadata=URI_DOC)
    default = fields.String(required=True, metadata={"example": "en"})
    locales = fields.List(fields.String(), required=True, metadata={"example": ["en", "jp"]})


class MetadataSchema(Schema):
    class Meta:
        title = "Metadata"

    sip = fields.Integer(required=True, metadata={"example": 16})
    name = fields.String()
    description = fields.String(metadata={"description": "Description"})
    image = _uri("Original image URL")
    cached_image = _uri("Cached image URL")
    cached_thumbnail_image = _uri("Cached image URL")
    attributes = fields.List(fields.Nested(MetadataAttributeSchema))
    properties = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(metadata={"title": "Metadata Value"}),
        metadata={"title": "Metadata Properties"},
    )
    localization = fields.Nested(MetadataLocalizationSchema)


class NftMetadataResponseSchema(Schema):
    class Meta:
        title = "Nft Metadata Response"

    token_uri = _uri("URI for this token's metadata JSON")
    metadata = fields.Nested(MetadataSchema)


class SftMetadataResponseSchema(NftMetadataResponseSchema):
    class Meta:
        title = "Sft Metadata Response"

    decimals = fields.Integer(metadata={"example": 6})
    total_supply = fields.String(metadata={"example": "250"})


class _FtFieldsSchema(Schema):
    name = fields.String(metadata={"example": "Wrapped USD"})
    symbol = fields.String(metadata={"example": "xUSD"})
    decimals = fields.Integer(metadata={"example": 8})
    total_supply = fields.String(metadata={"example": "9999980000000"})
    token_uri = _uri("URI for this token's metadata JSON")
    description = fields.String(metadata={"description": "Description"})
    image_uri = _uri("Cached image URL")
    image_thumbnail_uri = _uri("Cached image URL")
    image_canonical_uri = _uri("Original image URL")
    tx_id = fields.String(required=True)
    sender_address = fields.String(required=True)


class FtMetadataResponseSchema(_FtFieldsSchema):
    class Meta:
        title = "Ft Metadata Response"

    asset_identifier = fields.String(
        required=True, metadata={"description": "Clarity asset identifier"}
    )
    metadata = fields.Nested(MetadataSchema)


class FtBasicMetadataResponseSchema(_FtFieldsSchema):
    class Meta:
        title = "Ft Basic Metadata Response"

    asset_identifier = fields.String(
        required=True, metadata={"description": "Clarity asset identifier"}
    )
    contract_principal = fields.String(required=True)


class PaginatedFtBasicMetadataResponseSchema(Schema):
    class Meta:
        title = "Paginated Ft Basic Metadata Response"

    limit = fields.Integer(required=True, metadata={"example": 20})
    offset = fields.Integer(required=True, metadata={"example": 0})
    total = fields.Integer(required=True, metadata={"example": 1})
    results = fields.List(fields.Nested(FtBasicMetadataResponseSchema), required=True)


class SearchResultItemSchema(_FtFieldsSchema):
    class Meta:
        title = "Search Result Item"

    contract_id = fields.String(required=True, metadata={"description": "Contract principal"})
    token_number = fields.Integer(required=True, metadata={"description": "Token number"})
    token_type = fields.String(required=True, metadata={"description": "Token type (ft, nft, sft)"})


SEARCH_RESPONSE: dict[str, Any] = {
    "title": "Search Response",
    "type": "array",
    "items": SearchResultItemSchema,
}


class ChainTipSchema(Schema):
    block_height = fields.Integer(required=True, metadata={"example": 163541})
    index_block_hash = fields.String(required=True)


class ApiStatusResponseSchema(Schema):
    class Meta:
        title = "Api Status Response"

    server_version = fields.String(required=True)
    status = fields.String(required=True, metadata={"example": "ready"})
    # Null until the first import (the reference document says `anyOf [object, null]`).
    chain_tip = fields.Nested(ChainTipSchema, required=True, allow_none=True)
    tokens = fields.Dict(keys=fields.String(), values=fields.Integer())
    token_contracts = fields.Dict(keys=fields.String(), values=fields.Integer())
    job_queue = fields.Dict(keys=fields.String(), values=fields.Integer())


class ValidationErrorSchema(Schema):
    """The body of a 400: Fastify's validation error, naming the parameter."""

    class Meta:
        title = "Validation Error Response"

    statusCode = fields.Integer(required=True, metadata={"example": 400})
    code = fields.String(metadata={"example": "FST_ERR_VALIDATION"})
    error = fields.String(required=True, metadata={"example": "Bad Request"})
    message = fields.String(required=True, metadata={"example": "querystring/limit must be <= 60"})


def _error(title: str | None, message: str, *, with_message: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "object",
        "required": ["error", "message"] if with_message else ["error"],
        "properties": {"error": {"type": "string", "enum": [message]}},
    }
    if with_message:
        body["properties"]["message"] = {"type": "string"}
    return {"title": title, **body} if title else body


NOT_FOUND_RESPONSE: dict[str, Any] = {
    "title": "Not Found Error Response",
    "anyOf": [
        _error("Token Not Found Response", "Token not found"),
        _error("Contract Not Found Response", "Contract not found"),
    ],
}

TOKEN_ERROR_RESPONSE: dict[str, Any] = {
    "title": "Error Response",
    "anyOf": [
        _error("Token Metadata Fetch In Progress Response", "Token metadata fetch in progress"),
        _error("Locale Not Found Response", "Locale not found"),
        _error(None, "Token error", with_message=True),
    ],
}
