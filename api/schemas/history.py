"""Bodies of the history routes: a token's job and its newest fetch attempts
(docs/fetch-history.md#routes). Not in Hiro's API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.models import FetchOutcome, JobStatus, JobTrigger, TokenUpdateMode

KINDS = ("metadata", "image")


def _when(description: str) -> fields.String:
    return fields.String(required=True, allow_none=True, metadata={"description": description})


def _number(description: str) -> fields.Integer:
    return fields.Integer(required=True, allow_none=True, metadata={"description": description})


class TokenJobStateSchema(Schema):
    class Meta:
        title = "Token Job State"

    status = fields.String(required=True, validate=validate.OneOf([s.value for s in JobStatus]))
    retry_count = fields.Integer(
        required=True, metadata={"description": "Retries spent since the job last ended"}
    )
    retry_after = _when("A pending job is not due before then (ISO 8601)")
    frozen = fields.Boolean(
        required=True, metadata={"description": "A SIP-019 notification froze its metadata"}
    )
    update_mode = fields.String(
        required=True,
        validate=validate.OneOf([m.value for m in TokenUpdateMode]),
        metadata={"description": "The mode of its latest SIP-019 notification"},
    )
    next_refresh_at = _when("When a dynamic token is due to be fetched again; null otherwise")
    host_rate_limited_until = _when(
        "Until when the host of its latest metadata fetch is left alone after a 429"
    )


class FetchAttemptSchema(Schema):
    class Meta:
        title = "Fetch Attempt"

    at = fields.String(required=True, metadata={"description": "When it started (ISO 8601)"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    trigger = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf([t.value for t in JobTrigger]),
        metadata={"description": "What made the job due"},
    )
    url = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The URL requested, after gateway rewriting, without credentials"},
    )
    http_status = _number("The answer's HTTP status, when there was an answer")
    bytes = _number("Bytes of the answer's body, when it was read")
    duration_ms = _number("How long the attempt took")
    outcome = fields.String(required=True, validate=validate.OneOf([o.value for o in FetchOutcome]))
    reason_code = _number("The invalid-reason code the token's detail route would give")


class TokenHistorySchema(Schema):
    class Meta:
        title = "Token Fetch History"

    job = fields.Nested(TokenJobStateSchema, required=True)
    attempts = fields.List(
        fields.Nested(FetchAttemptSchema),
        required=True,
        metadata={"description": "The newest attempts (at most 20), newest first"},
    )
