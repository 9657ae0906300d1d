"""Response schemas, titled as in the reference OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields


class MetadataAttributeSchema(Schema):
    trait_type = fields.String(required=True)
    display_type = fields.String()
    value = fields.Raw(required=True)


class MetadataSchema(Schema):
    class Meta:
        title = "Metadata"

    sip = fields.Integer(required=True)
    name = fields.String()
    description = fields.String()
    image = fields.String()
    cached_image = fields.String()
    cached_thumbnail_image = fields.String()
    attributes = fields.List(fields.Nested(MetadataAttributeSchema))
    properties = fields.Dict(keys=fields.String(), values=fields.Raw())


class NftMetadataResponseSchema(Schema):
    token_uri = fields.String()
    metadata = fields.Nested(MetadataSchema)


class ChainTipSchema(Schema):
    block_height = fields.Integer(required=True)
    index_block_hash = fields.String(required=True)


class ApiStatusResponseSchema(Schema):
    server_version = fields.String(required=True)
    status = fields.String(required=True)
    chain_tip = fields.Nested(ChainTipSchema, allow_none=True)
    tokens = fields.Dict(keys=fields.String(), values=fields.Integer())
    token_contracts = fields.Dict(keys=fields.String(), values=fields.Integer())
    job_queue = fields.Dict(keys=fields.String(), values=fields.Integer())
