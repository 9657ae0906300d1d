"""JSON bodies of the admin routes (docs/reference-differences.md#admin-routes), in Ajv's words.

Unknown keys are ignored, as Fastify does; token numbers are JSON integers within Clarity's
uint range (a string, a float or a boolean is refused).
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, fields

from api.schemas.params import CONTRACT_PRINCIPAL_PATTERN, Pattern

MAX_TOKEN_NUMBER = 2**128 - 1  # Clarity's uint


class TokenNumber(fields.Field):
    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "must be integer",
        "too_small": "must be >= 0",
        "too_large": f"must be <= {MAX_TOKEN_NUMBER}",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        if value < 0:
            raise self.make_error("too_small")
        if value > MAX_TOKEN_NUMBER:
            raise self.make_error("too_large")
        return value


class AdminBodySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    # marshmallow declares it an instance attribute; a class-level default is its documented use
    error_messages: ClassVar[dict[str, str]] = {"type": "must be object"}  # type: ignore[misc]


def contract_id_field() -> fields.String:
    return fields.String(
        data_key="contractId",
        required=True,
        validate=Pattern(CONTRACT_PRINCIPAL_PATTERN),
        error_messages={
            "required": "must have required property 'contractId'",
            "invalid": "must be string",
            "null": "must be string",
        },
    )


class ContractBodySchema(AdminBodySchema):
    """`{contractId}`: import-contract."""

    contract_id = contract_id_field()


class ContractTokensBodySchema(AdminBodySchema):
    """`{contractId, tokenIds?}`: refresh-token and cache-images; no tokenIds means all."""

    contract_id = contract_id_field()
    token_ids = fields.List(
        TokenNumber(),
        data_key="tokenIds",
        load_default=None,
        allow_none=False,
        error_messages={"invalid": "must be array", "null": "must be array"},
    )
