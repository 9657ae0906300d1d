"""Parameters and bodies of the marketplace routes: collection pages, owners' galleries, batch
reads and self-service refreshes (docs/marketplace-api.md). Not in Hiro's API."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from api.schemas.params import (
    C32,
    CONTRACT_PRINCIPAL_PATTERN,
    PRINCIPAL,
    LocaleQuerySchema,
    Pattern,
    principal_field,
    text_field,
)
from shared.reads.items import MAX_TOKEN_NUMBER
from shared.reads.pages import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT

MAX_TOKEN_IDS = 100
MAX_BATCH_TOKENS = 100
MAX_CONTRACT_FILTERS = 100
MAX_CURSOR_LENGTH = 128
OWNER_PATTERN = rf"^[{C32}]{{28,41}}(\.[a-zA-Z]([a-zA-Z0-9]|[-_]){{0,39}})?$"
TOKEN_ID_PATTERN = r"^(0x[0-9a-fA-F]{1,32}|[0-9]{1,39})$"  # noqa: S105 - not a secret
_TOKEN_ID = re.compile(TOKEN_ID_PATTERN)
INCLUDE_RAW = "raw"


class TokenId(fields.Field):
    """A token id as a decimal string, a `0x` hex string, or (in a JSON body) an integer;
    at most 2^128 - 1. Loads as an int."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "must be a decimal or 0x-prefixed hex token id",
        "too_large": f"must be <= {MAX_TOKEN_NUMBER}",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _TOKEN_ID.fullmatch(value):
            number = int(value, 16) if value.startswith("0x") else int(value)
        else:
            raise self.make_error("invalid")
        if not 0 <= number <= MAX_TOKEN_NUMBER:
            raise self.make_error("too_large" if number > 0 else "invalid")
        return number


def _limit() -> fields.Integer:
    return fields.Integer(
        load_default=DEFAULT_PAGE_LIMIT,
        strict=False,
        validate=[
            validate.Range(min=1, error="must be >= {min}"),
            validate.Range(max=MAX_PAGE_LIMIT, error="must be <= {max}"),
        ],
        error_messages={"invalid": "must be integer"},
        metadata={"title": "Limit", "description": "Tokens per page (1-200)", "example": 100},
    )


def _cursor() -> fields.String:
    return text_field(
        validate=[validate.Length(max=MAX_CURSOR_LENGTH, error="is not a valid cursor")],
        metadata={
            "title": "Cursor",
            "description": "The `next_cursor` of the previous page; omit it for the first page",
        },
    )


def _include() -> fields.List:
    return fields.List(
        fields.String(
            validate=validate.OneOf([INCLUDE_RAW], error="must be equal to one of {choices}")
        ),
        load_default=list,
        metadata={
            "title": "Include",
            "description": "`raw`: add each token's fetched document as parsed JSON",
        },
    )


class PageQuerySchema(LocaleQuerySchema):
    """What every page takes: `limit`, `cursor`, `locale`, `include`."""

    limit = _limit()
    cursor = _cursor()
    include = _include()


class CollectionQuerySchema(PageQuerySchema):
    token_ids = fields.List(
        TokenId(metadata={"pattern": TOKEN_ID_PATTERN}),
        validate=validate.Length(max=MAX_TOKEN_IDS, error="must NOT have more than {max} items"),
        metadata={
            "title": "Token IDs",
            "description": "Only these tokens (decimal or 0x hex; repeat the parameter)",
        },
    )


class OwnerQuerySchema(PageQuerySchema):
    contract = fields.List(
        fields.String(validate=PRINCIPAL),
        validate=validate.Length(
            max=MAX_CONTRACT_FILTERS, error="must NOT have more than {max} items"
        ),
        metadata={
            "title": "Contracts",
            "description": "Only tokens of these contracts (repeat the parameter)",
        },
    )


def collection_path_schema(kind: str, standard: str) -> type[Schema]:
    return Schema.from_dict(
        {
            "principal": principal_field(
                "Contract Principal",
                f"A {standard} contract's principal",
                "SP497E7RX3233ATBS2AB9G4WTHB63X5PBSP5VGAQ.boomboxes-cycle-12",
            )
        },
        name=f"{kind.capitalize()}CollectionPathSchema",
    )


class OwnerPathSchema(Schema):
    principal = fields.String(
        required=True,
        validate=Pattern(OWNER_PATTERN),
        metadata={
            "title": "Owner",
            "description": "A standard principal (address) or a contract principal",
            "example": "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7",
        },
    )


class BatchTokenSchema(Schema):
    class Meta:
        unknown = RAISE

    contract_id = fields.String(
        required=True,
        validate=Pattern(CONTRACT_PRINCIPAL_PATTERN),
        error_messages={"required": "must have required property 'contract_id'"},
        metadata={"example": "SP497E7RX3233ATBS2AB9G4WTHB63X5PBSP5VGAQ.boomboxes-cycle-12"},
    )
    token_id = TokenId(
        metadata={
            "description": "Decimal or 0x hex (a JSON integer too); omitted for a fungible token",
            "example": "1",
        }
    )


class BatchBodySchema(Schema):
    class Meta:
        unknown = RAISE

    tokens = fields.List(
        fields.Nested(BatchTokenSchema),
        required=True,
        validate=[
            validate.Length(min=1, error="must NOT have fewer than {min} items"),
            validate.Length(max=MAX_BATCH_TOKENS, error="must NOT have more than {max} items"),
        ],
        error_messages={"required": "must have required property 'tokens'"},
    )


class BatchQuerySchema(LocaleQuerySchema):
    include = _include()


class TokenItemSchema(Schema):
    """Documents the token item (stored by Postgres, completed by `shared.reads.items.item_of`)."""

    class Meta:
        title = "Token Item"
        unknown = EXCLUDE

    contract_id = fields.String(required=True)
    token_type = fields.String(required=True, validate=validate.OneOf(["nft", "sft", "ft"]))
    token_id = fields.String(required=True, metadata={"description": "Decimal, up to 2^128-1"})
    token_id_hex = fields.String(required=True, metadata={"example": "0x" + "0" * 31 + "1"})
    owner = fields.String(allow_none=True, required=True)
    burned = fields.Boolean(required=True)
    mint_info = fields.Dict(allow_none=True, required=True)
    token_uri = fields.String(allow_none=True, required=True)
    metadata = fields.Dict(allow_none=True, required=True)
    normalized = fields.Dict(required=True)
    cached_image = fields.String()
    cached_thumbnail_image = fields.String()
    metadata_updated_at = fields.String(allow_none=True, required=True)
    awaiting_metadata_update = fields.Boolean(required=True)
    error = fields.Dict()
    raw = fields.Raw()
    name = fields.String(allow_none=True)
    symbol = fields.String(allow_none=True)
    decimals = fields.Integer(allow_none=True)
    total_supply = fields.String(allow_none=True)


class TokenPageSchema(Schema):
    class Meta:
        title = "Token Page"

    limit = fields.Integer(required=True)
    total = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    results = fields.List(fields.Nested(TokenItemSchema), required=True)


class BatchResponseSchema(Schema):
    class Meta:
        title = "Token Batch"

    results = fields.List(
        fields.Dict(metadata={"description": "A token item, or {contract_id, token_id, error}"}),
        required=True,
    )


class RefreshQueuedSchema(Schema):
    class Meta:
        title = "Refresh Queued"

    status = fields.String(required=True, validate=validate.OneOf(["queued"]))


class TooManyRefreshesSchema(Schema):
    class Meta:
        title = "Too Many Refresh Requests"

    error = fields.String(required=True, validate=validate.OneOf(["Too many refresh requests"]))
    message = fields.String(
        required=True,
        metadata={"example": "This token was refreshed or asked for less than 600 s ago"},
    )


class TokenFrozenSchema(Schema):
    class Meta:
        title = "Token Frozen"

    error = fields.String(required=True, validate=validate.OneOf(["Token is frozen"]))
    message = fields.String(required=True)


RETRY_AFTER_HEADER: dict[str, Any] = {
    "Retry-After": {
        "description": "Whole seconds (at least 1) before a request can get through",
        "schema": {"type": "integer", "minimum": 1},
    }
}
