"""The `X-Webhook-Signature` header (docs/webhooks.md#signature) and the back-off schedule."""

from __future__ import annotations

import itertools

import pytest

from shared.webhooks.delivery import backoff_s
from shared.webhooks.signing import sign, verify

SECRET = "whsec_0123456789abcdef"
BODY = b'{"subscription_id":1,"changes":[]}'
# printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac "$SECRET"
VECTOR = "0700910d065896aa92e9ea81534360e848ce35242da66b00d3fb459bb7f44763"


def test_the_header_is_the_hmac_of_the_timestamp_and_the_raw_body() -> None:
    assert sign(SECRET, 1_700_000_000, BODY) == f"t=1700000000,v1={VECTOR}"


def test_verify_accepts_the_signed_body_and_nothing_else() -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    assert verify(SECRET, header, BODY, now=1_700_000_010)
    assert not verify(SECRET, header, BODY + b" ", now=1_700_000_010)
    assert not verify("another-secret-of-16", header, BODY, now=1_700_000_010)
    forged = header.replace("t=1700000000", "t=1700000005")
    assert not verify(SECRET, forged, BODY, now=1_700_000_010)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=abc,v1=abc", "t=1700000000", "garbage"])
def test_verify_refuses_a_malformed_header(header: str) -> None:
    assert not verify(SECRET, header, BODY, now=1_700_000_000)


def test_verify_refuses_an_old_or_future_timestamp() -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    assert not verify(SECRET, header, BODY, now=1_700_000_301)
    assert not verify(SECRET, header, BODY, now=1_699_999_699)
    assert verify(SECRET, header, BODY, now=1_700_000_600, tolerance_s=600)


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    schedule = [backoff_s(n, 10.0, 86_400.0, rand=0.0) for n in range(1, 16)]
    assert schedule[:5] == [10.0, 20.0, 40.0, 80.0, 160.0]
    assert schedule[-1] == 86_400.0
    assert all(a <= b for a, b in itertools.pairwise(schedule))
    assert backoff_s(10_000, 10.0, 86_400.0, rand=0.0) == 86_400.0


def test_backoff_jitter_only_shortens_the_wait_by_up_to_a_fifth() -> None:
    assert backoff_s(3, 10.0, 86_400.0, rand=1.0) == pytest.approx(32.0)
    assert backoff_s(30, 10.0, 86_400.0, rand=0.5) == pytest.approx(86_400.0 * 0.9)
    for _ in range(100):
        assert 8.0 <= backoff_s(1, 10.0, 86_400.0) <= 10.0
