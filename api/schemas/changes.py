"""Parameters and answers of the change feed, `GET /changes` (docs/change-feed.md#the-feed).
Not in Hiro's API."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from api.schemas.params import MAX_OFFSET, PRINCIPAL, Integer
from shared.models import ChangeKind
from shared.reads.changes import DEFAULT_LIMIT, MAX_CONTRACTS, MAX_LIMIT, ChangesPruned

KINDS = [kind.value for kind in ChangeKind]
PRUNED = "Changes pruned"


class ChangesQuerySchema(Schema):
    after = Integer(
        load_default=0,
        validate=[
            validate.Range(min=0, error="must be >= {min}"),
            validate.Range(max=MAX_OFFSET, error="must be <= {max}"),
        ],
        metadata={
            "title": "After",
            "description": "The last entry id you have (the previous answer's `next_after`); "
            "0 for the oldest entries kept",
        },
    )
    limit = Integer(
        load_default=DEFAULT_LIMIT,
        validate=[
            validate.Range(min=1, error="must be >= {min}"),
            validate.Range(max=MAX_LIMIT, error="must be <= {max}"),
        ],
        metadata={"title": "Limit", "description": f"Entries per answer (1-{MAX_LIMIT})"},
    )
    contract = fields.List(
        fields.String(validate=PRINCIPAL),
        validate=validate.Length(max=MAX_CONTRACTS, error="must NOT have more than {max} items"),
        metadata={
            "title": "Contracts",
            "description": "Only entries of these contracts (repeat the parameter)",
        },
    )
    kind = fields.List(
        fields.String(validate=validate.OneOf(KINDS, error="must be equal to one of {choices}")),
        validate=validate.Length(max=len(KINDS), error="must NOT have more than {max} items"),
        metadata={"title": "Kinds", "description": "Only entries of these kinds (repeat it)"},
    )


class ChangeSchema(Schema):
    class Meta:
        title = "Change"

    id = fields.Integer(required=True, metadata={"description": "Increases in commit order"})
    at = fields.String(required=True, metadata={"description": "When it was recorded (ISO 8601)"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    contract_id = fields.String(required=True, metadata={"description": "Contract principal"})
    token_id = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Decimal token id; null for the contract itself"},
    )
    block_height = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "The block whose effect it records, if it is one"},
    )
    details = fields.Dict(required=True, metadata={"description": "Depends on the kind"})


class ChangesPageSchema(Schema):
    class Meta:
        title = "Changes"

    results = fields.List(fields.Nested(ChangeSchema), required=True)
    next_after = fields.Integer(
        required=True, metadata={"description": "The `after` of your next request"}
    )


class ChangesPrunedSchema(Schema):
    class Meta:
        title = "Changes Pruned"

    error = fields.String(required=True, validate=validate.OneOf([PRUNED]))
    message = fields.String(required=True)
    pruned_through = fields.Integer(
        required=True, metadata={"description": "Entries up to this id are gone"}
    )
    latest_id = fields.Integer(
        required=True, metadata={"description": "Follow from here after resynchronising"}
    )


def pruned_body(pruned: ChangesPruned) -> dict[str, Any]:
    """The 410's body: `after` is behind the horizon (GET /changes and the stream)."""
    message = (
        f"Entries up to id {pruned.pruned_through} were pruned and some after yours may be "
        f"gone: resynchronise from the token routes, then follow from after={pruned.latest_id}"
    )
    return {
        "error": PRUNED,
        "message": message,
        "pruned_through": pruned.pruned_through,
        "latest_id": pruned.latest_id,
    }
