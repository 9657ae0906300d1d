"""Which failures count against a gateway, and the hedge budget (docs/gateways.md)."""

from __future__ import annotations

import pytest

from shared.errors import (
    HostBusyError,
    MetadataConnectionError,
    MetadataHttpError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    RetryableJobError,
    TooManyRequestsError,
)
from shared.indexing.gateway_fetch import HedgeBudget, gateway_at_fault
from shared.metadata.gateways import GatewayHealth
from shared.metadata.netguard import BlockedAddressError


def _busy_after_429() -> HostBusyError:
    try:
        raise HostBusyError("gw.example") from TooManyRequestsError("u", "gw.example", None)
    except HostBusyError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "at_fault"),
    [
        (MetadataTimeoutError("slow"), True),
        (MetadataConnectionError("refused"), True),
        (MetadataHttpError("HTTP 502", status=502), True),
        (TooManyRequestsError("u", "gw.example", 30.0), True),
        (_busy_after_429(), True),
        (BlockedAddressError("gw.example", "10.0.0.1", "private"), True),
        (MetadataHttpError("HTTP 404", status=404), False),
        (MetadataSizeExceededError("too big"), False),
        (HostBusyError("gw.example"), False),
        (RetryableJobError("skipping fetch to rate-limited hostname gw.example"), False),
    ],
)
def test_only_the_gateways_own_failures_count_against_it(error: Exception, at_fault: bool) -> None:
    assert gateway_at_fault(error) is at_fault


def test_the_hedge_budget_allows_its_burst_then_its_share_of_documents() -> None:
    budget = HedgeBudget(share=0.25, burst=2.0)
    assert [budget.spend() for _ in range(3)] == [True, True, False]
    for _ in range(4):
        budget.earn()
    assert [budget.spend() for _ in range(2)] == [True, False]


def test_health_halves_with_250_ms_of_latency_or_half_the_answers_failing() -> None:
    assert GatewayHealth().score == 1.0
    assert GatewayHealth(latency_ms=250.0).score == pytest.approx(0.5)
    assert GatewayHealth(latency_ms=0.0, error_rate=0.5).score == pytest.approx(0.5)
