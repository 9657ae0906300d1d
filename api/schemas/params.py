"""Request parameters, validated as the reference does (section 2.1)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

C32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CONTRACT_PRINCIPAL_PATTERN = rf"^[{C32}]{{28,41}}\.[a-zA-Z]([a-zA-Z0-9]|[-_]){{0,39}}$"


class TokenPathSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    principal = fields.String(
        required=True,
        validate=validate.Regexp(CONTRACT_PRINCIPAL_PATTERN, error='must match pattern "{regex}"'),
        metadata={"description": "Token contract principal"},
    )
    token_id = fields.Integer(required=True, metadata={"description": "Token ID to retrieve"})


class LocaleQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # the reference ignores unknown query keys

    locale = fields.String(
        load_default=None,
        validate=validate.Length(max=64),
        metadata={"description": "Metadata localization to retrieve"},
    )
