"""The refresh routes' hourly quota per client (shared/client_quota.py) on fakeredis."""

from __future__ import annotations

import logging
import socket

from shared.client_quota import ClientQuota


def test_a_client_is_refused_past_its_limit_until_its_window_ends(client, clock) -> None:
    quota = ClientQuota(client, limit=2, window_s=3600)
    assert [quota.take("a").allowed for _ in range(2)] == [True, True]
    clock.advance(600)
    refused = quota.take("a")
    assert not refused.allowed
    assert refused.retry_after_s == 3000  # the window started with the first request
    assert quota.take("b").allowed  # every client has its own count
    clock.advance(3001)
    assert quota.take("a").allowed  # a new window


def test_refused_requests_do_not_extend_the_window(client, clock) -> None:
    quota = ClientQuota(client, limit=1, window_s=60)
    assert quota.take("a").allowed
    for _ in range(5):
        clock.advance(10)
        assert not quota.take("a").allowed
    clock.advance(11)
    assert quota.take("a").allowed


def test_retry_after_is_whole_seconds_and_at_least_one(client, clock) -> None:
    quota = ClientQuota(client, limit=1, window_s=60)
    quota.take("a")
    clock.advance(59.5)
    assert quota.take("a").retry_after_s == 1


def test_a_counter_left_without_expiry_gets_one(client) -> None:
    client.set("token-metadata:refresh-requests:a", 5)
    quota = ClientQuota(client, limit=10, window_s=60)
    assert quota.take("a").allowed
    assert 0 < client.ttl("token-metadata:refresh-requests:a") <= 60


def test_without_redis_the_request_is_allowed_and_logged(caplog) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    quota = ClientQuota.connect(f"redis://127.0.0.1:{port}/0", limit=1)
    with caplog.at_level(logging.WARNING, logger="shared.client_quota"):
        assert all(quota.take("a").allowed for _ in range(3))
    assert "refresh quota not counted" in caplog.text
    quota.close()
