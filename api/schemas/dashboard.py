"""The operator dashboard's JSON (`GET /metadata/v1/admin/dashboard`, docs/dashboard.md):
dumped from `shared.reads.dashboard.Dashboard`. Progress figures have the shapes of
`GET /admin/progress` and `GET /admin/progress/{principal}`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields

from shared.reads.progress import ContractProgress, Progress

_COUNTS = {"keys": fields.String(), "values": fields.Integer()}


def counts_from(serialize: Callable[[Any], dict[str, int]]) -> fields.Function:
    """Counts by name, computed from the dumped object; loaded (in tests) as a dict of ints."""
    return fields.Function(serialize, deserialize=fields.Dict(**_COUNTS).deserialize)


def _token_totals(progress: Progress) -> dict[str, int]:
    return {"total": progress.total(), "finished": progress.finished()}


def _tokens_with_total(progress: ContractProgress) -> dict[str, int]:
    return {**progress.tokens, "total": progress.total}


class IndexProgressSchema(Schema):
    kinds = fields.Dict(attribute="counts", keys=fields.String(), values=fields.Dict(**_COUNTS))
    tokens = counts_from(_token_totals)
    window_s = fields.Float()
    tokens_per_second = fields.Float()
    seconds_left = fields.Float(allow_none=True)


class ContractProgressSchema(Schema):
    contract_id = fields.String(attribute="principal")
    sip = fields.String()
    token_count = fields.Integer(allow_none=True)
    contract_job = fields.String(allow_none=True)
    tokens = counts_from(_tokens_with_total)  # token jobs by status, and their total
    finished = fields.Integer()
    window_s = fields.Float()
    tokens_per_second = fields.Float()
    seconds_left = fields.Float(allow_none=True)


class MinuteCountSchema(Schema):
    at = fields.DateTime()
    tokens = fields.Integer()


class ThroughputSchema(Schema):
    bucket_s = fields.Integer()
    total = fields.Integer()
    minutes = fields.List(fields.Nested(MinuteCountSchema))


class ReasonCountSchema(Schema):
    status = fields.String()
    code = fields.Integer(allow_none=True)
    message = fields.String()
    jobs = fields.Integer()


class HostCountSchema(Schema):
    host = fields.String()
    jobs = fields.Integer()


class FailuresSchema(Schema):
    total = fields.Integer()
    by_reason = fields.List(fields.Nested(ReasonCountSchema))
    by_host = fields.List(fields.Nested(HostCountSchema))


class RateLimitedHostSchema(Schema):
    hostname = fields.String()
    until = fields.DateTime()
    seconds_left = fields.Float()


class RateLimitedHostsSchema(Schema):
    total = fields.Integer()
    hosts = fields.List(fields.Nested(RateLimitedHostSchema))


class BusyHostSchema(Schema):
    host = fields.String()
    slots_held = fields.Integer()
    processes_waiting = fields.Integer()


class HostSlotsSchema(Schema):
    busy = fields.List(fields.Nested(BusyHostSchema), allow_none=True)
    error = fields.String(allow_none=True)


class QueueLengthsSchema(Schema):
    broker = fields.Dict(**_COUNTS, allow_none=True)
    broker_error = fields.String(allow_none=True)
    token_jobs = fields.Dict(**_COUNTS)
    contract_jobs = fields.Dict(**_COUNTS)


class DashboardSchema(Schema):
    generated_at = fields.DateTime()
    index = fields.Nested(IndexProgressSchema)
    contracts = fields.List(fields.Nested(ContractProgressSchema))
    throughput = fields.Nested(ThroughputSchema)
    failures = fields.Nested(FailuresSchema)
    rate_limited_hosts = fields.Nested(RateLimitedHostsSchema)
    host_slots = fields.Nested(HostSlotsSchema)
    queues = fields.Nested(QueueLengthsSchema)
