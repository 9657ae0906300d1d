"""Request parameters, validated as Hiro's API does, messages worded as its validator's (Ajv).

Stricter than the reference where its leniency ends in a database error: no NUL characters
(Postgres text cannot hold them), integers in ASCII digits only, offsets within bigint
(docs/reference-differences.md#input-validation).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

C32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CONTRACT_PRINCIPAL_PATTERN = rf"^[{C32}]{{28,41}}\.[a-zA-Z]([a-zA-Z0-9]|[-_]){{0,39}}$"
STACKS_ADDRESS_PATTERN = rf"^[{C32}]{{28,41}}"
CONTRACT_IDENTIFIER_PATTERN = CONTRACT_PRINCIPAL_PATTERN[:-1] + r"(:\d+)?$"
MAX_LOCALE_LENGTH = 64
MAX_OFFSET = 2**63 - 1
LIST_LIMIT_MAX = 60
SEARCH_MAX_IDENTIFIERS = 50
INTEGER_PATTERN = r"-?[0-9]+"
_INTEGER = re.compile(INTEGER_PATTERN)


class Pattern(validate.Regexp):
    """A regex that must match the whole value (`$` in Python also matches before a final `\\n`)."""

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern, error='must match pattern "{regex}"')
        # `\d` in Python also matches non-ASCII digits; JSON Schema patterns mean ASCII ones.
        self._full = re.compile(pattern.replace(r"\d", "[0-9]"))

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self._full.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value

    @property
    def body(self) -> str:
        """The regex as it is applied (ASCII digits), without anchors: for composing it into a
        larger one (api.fast_routes matches whole paths with it)."""
        return self._full.pattern.removeprefix("^").removesuffix("$")


PRINCIPAL = Pattern(CONTRACT_PRINCIPAL_PATTERN)
IDENTIFIER = Pattern(CONTRACT_IDENTIFIER_PATTERN)


def no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("must not contain the NUL character")


class Integer(fields.Integer):
    """An integer in ASCII digits (Python's int() also takes `1_0` and other scripts' digits)."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "must be integer",
        "too_large": "must be integer",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or _INTEGER.fullmatch(value) is None:
            raise self.make_error("invalid")
        try:
            return int(value)
        except ValueError:  # more digits than Python converts
            raise self.make_error("too_large") from None


def text_field(**kwargs: Any) -> fields.String:
    return fields.String(validate=[no_nul, *kwargs.pop("validate", [])], **kwargs)


def principal_field(title: str, description: str, example: str) -> fields.String:
    return fields.String(
        required=True,
        validate=PRINCIPAL,
        metadata={"title": title, "description": description, "example": example},
    )


def token_id_field() -> Integer:
    return Integer(
        required=True,
        metadata={"title": "Token ID", "description": "Token ID to retrieve", "example": "35"},
    )


def path_schema(name: str, principal: fields.String, with_token_id: bool) -> type[Schema]:
    """The path parameters of one token route, documented with that route's titles."""
    declared: dict[str, fields.Field] = {"principal": principal}
    if with_token_id:
        declared["token_id"] = token_id_field()
    return Schema.from_dict(declared, name=name)


class LocaleQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE  # the reference ignores unknown query keys

    locale = text_field(
        validate=[
            validate.Length(max=MAX_LOCALE_LENGTH, error="must NOT have more than {max} characters")
        ],
        metadata={"title": "Localization", "description": "Metadata localization to retrieve"},
    )


class FtListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = text_field()
    symbol = text_field()
    address = text_field(
        validate=[validate.Regexp(STACKS_ADDRESS_PATTERN, error='must match pattern "{regex}"')],
        metadata={"title": "Stacks Address", "description": "Stacks Address"},
    )
    valid_metadata_only = fields.Boolean(
        load_default=False,
        truthy={"true"},
        falsy={"false"},
        error_messages={"invalid": "must be boolean"},
        metadata={
            "description": "If enabled, only tokens with valid SIP-016 metadata will be returned"
        },
    )
    offset = Integer(
        load_default=0,
        validate=[
            validate.Range(min=0, error="must be >= {min}"),
            validate.Range(max=MAX_OFFSET, error="must be <= {max}"),
        ],
        metadata={"title": "Offset", "description": "Result offset"},
    )
    limit = Integer(
        load_default=20,
        validate=[
            validate.Range(min=1, error="must be >= {min}"),
            validate.Range(max=LIST_LIMIT_MAX, error="must be <= {max}"),
        ],
        metadata={"title": "Limit", "description": "Results per page"},
    )
    order_by = fields.String(
        load_default="name",
        validate=validate.OneOf(["name", "symbol"], error="must be equal to one of {choices}"),
        metadata={"title": "Order By", "description": "Parameter to order results by"},
    )
    order = fields.String(
        load_default="asc",
        validate=validate.OneOf(["asc", "desc"], error="must be equal to one of {choices}"),
        metadata={"title": "Order", "description": "Results order"},
    )


class SearchQuerySchema(LocaleQuerySchema):
    contract = fields.List(
        fields.String(
            validate=IDENTIFIER,
            metadata={
                "title": "Contract Identifier",
                "description": "Format: PRINCIPAL or PRINCIPAL:TOKEN_NUMBER",
            },
        ),
        required=True,
        validate=[
            validate.Length(min=1, error="must NOT have fewer than {min} items"),
            validate.Length(
                max=SEARCH_MAX_IDENTIFIERS, error="must NOT have more than {max} items"
            ),
        ],
        error_messages={"required": "must have required property 'contract'"},
        metadata={
            "title": "Contract Identifiers",
            "description": "Contract identifiers to search for. Format: PRINCIPAL or "
            "PRINCIPAL:TOKEN_NUMBER. Defaults token_number to 1 when omitted.",
        },
    )
