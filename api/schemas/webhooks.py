"""JSON bodies of the webhook admin routes (docs/webhooks.md#subscriptions)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from api.schemas.admin import AdminBodySchema
from api.schemas.params import MAX_OFFSET, PRINCIPAL
from shared.metadata.fetch import is_http_url
from shared.models import ChangeKind
from shared.reads.changes import MAX_CONTRACTS

KINDS = [kind.value for kind in ChangeKind]
MIN_SECRET_LENGTH = 16
MAX_URL_LENGTH = 2048


def http_url(value: str) -> None:
    """An http(s) URL with a host (where it points is checked on each delivery)."""
    if not is_http_url(value) or any(c.isspace() for c in value):
        raise ValidationError("must be an http(s) URL with a host")


def _string(name: str, **kwargs: Any) -> fields.String:
    return fields.String(
        required=True,
        error_messages={
            "required": f"must have required property '{name}'",
            "invalid": "must be string",
            "null": "must be string",
        },
        **kwargs,
    )


class WebhookBodySchema(AdminBodySchema):
    """`{url, secret, contracts?, kinds?, after?}`."""

    url = _string(
        "url",
        validate=[
            validate.Length(max=MAX_URL_LENGTH, error="must NOT have more than {max} characters"),
            http_url,
        ],
    )
    secret = _string(
        "secret",
        validate=validate.Length(
            min=MIN_SECRET_LENGTH, error="must NOT have fewer than {min} characters"
        ),
    )
    contracts = fields.List(
        fields.String(validate=PRINCIPAL, error_messages={"invalid": "must be string"}),
        load_default=None,
        validate=validate.Length(
            min=1, max=MAX_CONTRACTS, error="must have 1 to {max} items (omit it for all)"
        ),
        error_messages={"invalid": "must be array", "null": "must be array"},
    )
    kinds = fields.List(
        fields.String(
            validate=validate.OneOf(KINDS, error="must be equal to one of {choices}"),
            error_messages={"invalid": "must be string"},
        ),
        load_default=None,
        validate=validate.Length(min=1, error="must have at least 1 item (omit it for all)"),
        error_messages={"invalid": "must be array", "null": "must be array"},
    )
    after = fields.Integer(
        load_default=None,
        strict=True,
        validate=validate.Range(min=0, max=MAX_OFFSET, error="must be >= {min} and <= {max}"),
        error_messages={"invalid": "must be integer"},
    )
