"""Webhook POSTs through the guarded fetcher (docs/webhooks.md#guard): the SSRF guard on
every resolved address, no redirect followed, time limits; and a GET after a POST on the
same connection is still a GET."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from support.http_server import Reply, ScriptedServer

from shared.config import Settings
from shared.errors import MetadataTimeoutError
from shared.metadata.fetch import FetchLimits, MetadataFetcher
from shared.metadata.netguard import BlockedAddressError, NetGuard
from shared.webhooks.delivery import webhook_fetcher

DNS = {
    "loopback.test": ["127.0.0.1"],
    "private.test": ["10.1.2.3"],
    "mixed.test": ["93.184.216.34", "192.168.1.1"],
    "metadata.test": ["169.254.169.254"],
    "link-local.test": ["169.254.10.10"],
    "v6-loopback.test": ["::1"],
    "public.test": ["93.184.216.34"],
}


def stub_resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, f"unknown host {host}")
    return DNS[host]


class LoopbackInternet:
    """A connector standing in for the internet: records the checked IP, dials our server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.calls: list[str] = []

    def __call__(self, ip: str, port: int, timeout: float) -> socket.socket:
        self.calls.append(ip)
        return socket.create_connection(("127.0.0.1", self.port), timeout)


@pytest.fixture
def receiver() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def guarded(server: ScriptedServer, timeout_s: float = 2.0) -> tuple[MetadataFetcher, list[str]]:
    internet = LoopbackInternet(server.server.server_port)
    guard = NetGuard(allow_private=False, resolver=stub_resolver, connector=internet)
    limits = FetchLimits(timeout_s=timeout_s, total_timeout_s=timeout_s, max_redirects=0)
    return MetadataFetcher(limits, guard), internet.calls


def url(server: ScriptedServer, host: str, path: str = "/hook") -> str:
    return f"http://{host}:{server.server.server_port}{path}"


def test_a_post_sends_the_body_and_headers_and_returns_the_status(
    receiver: ScriptedServer,
) -> None:
    receiver.script("/hook", [Reply(204)])
    fetcher, calls = guarded(receiver)
    body = b'{"changes": []}' + b" " * 5000  # over 1 KiB: no Expect: 100-continue wait
    with fetcher:
        status = fetcher.post(url(receiver, "public.test"), body, {"X-Webhook-Signature": "s"})
    assert status == 204
    (posted,) = receiver.posts
    assert posted.body == body
    assert posted.headers["X-Webhook-Signature"] == "s"
    assert "Expect" not in posted.headers
    assert calls == ["93.184.216.34"]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("loopback.test", "loopback"),
        ("private.test", "private"),
        ("mixed.test", "private"),
        ("metadata.test", "cloud-metadata"),
        ("link-local.test", "link-local"),
        ("v6-loopback.test", "loopback"),
        ("169.254.169.254", "cloud-metadata"),
        ("2130706433", "loopback"),
    ],
)
def test_a_private_address_is_refused_before_any_connection(
    receiver: ScriptedServer, host: str, reason: str
) -> None:
    fetcher, calls = guarded(receiver)
    with fetcher, pytest.raises(BlockedAddressError, match=reason):
        fetcher.post(url(receiver, host), b"{}", {})
    assert calls == []
    assert receiver.posts == []


def test_the_real_loopback_is_refused_unless_private_networks_are_allowed(
    receiver: ScriptedServer,
) -> None:
    receiver.script("/hook", [Reply(200)])
    with webhook_fetcher(Settings()) as refusing, pytest.raises(BlockedAddressError):
        refusing.post(receiver.url + "/hook", b"{}", {})
    assert receiver.posts == []
    allowing = Settings(metadata_fetch_allow_private_networks=True)
    with webhook_fetcher(allowing) as fetcher:
        assert fetcher.post(receiver.url + "/hook", b"{}", {}) == 200


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_answered_not_followed(receiver: ScriptedServer, status: int) -> None:
    receiver.script("/hook", [Reply(status, headers={"Location": "/elsewhere"})])
    receiver.script("/elsewhere", [Reply(200)])
    fetcher, _ = guarded(receiver)
    with fetcher:
        assert fetcher.post(url(receiver, "public.test"), b"{}", {}) == status
    assert [posted.path for posted in receiver.posts] == ["/hook"]


def test_a_slow_receiver_times_out(receiver: ScriptedServer) -> None:
    receiver.script("/hook", [Reply(200, delay_s=3.0)])
    fetcher, _ = guarded(receiver, timeout_s=0.5)
    with fetcher, pytest.raises(MetadataTimeoutError):
        fetcher.post(url(receiver, "public.test"), b"{}", {})


def test_a_get_after_a_post_on_the_same_connection_is_a_get(receiver: ScriptedServer) -> None:
    receiver.script("/hook", [Reply(200)])
    receiver.route("/doc.json", Reply(200, b'{"name": "x"}'))
    fetcher, _ = guarded(receiver)
    with fetcher:
        assert fetcher.post(url(receiver, "public.test"), b"{}", {}) == 200
        assert fetcher.fetch_bytes(url(receiver, "public.test", "/doc.json")) == b'{"name": "x"}'
    assert receiver.hits["/doc.json"] == 1
    assert len(receiver.posts) == 1
