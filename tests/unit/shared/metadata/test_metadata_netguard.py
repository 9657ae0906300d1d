import ipaddress
import pickle
import socket
from types import SimpleNamespace

import pytest

from shared.errors import MetadataHttpError
from shared.metadata import netguard
from shared.metadata.netguard import (
    BlockedAddressError,
    NetGuard,
    classify_address,
    parse_ip_literal,
    system_resolver,
    tcp_connector,
)

DNS = {
    "localhost.test": ["127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.1.2.3"],
    "mixed-v6.test": ["2606:4700::1111", "::1"],
    "metadata.google.internal": ["169.254.169.254"],
    "mapped.test": ["::ffff:192.168.0.1"],
    "garbage.test": ["not-an-ip"],
    "public.test": ["93.184.216.34"],
    "two-public.test": ["93.184.216.34", "2606:4700::1111"],
    "three-public.test": ["93.184.216.34", "2606:4700::1111", "1.1.1.1"],
    "empty.test": [],
}


def stub_resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, f"unknown host {host}")
    return DNS[host]


class RecordingConnector:
    """Records connect calls; never opens a real network socket."""

    def __init__(self, allow: bool = True, failing: frozenset[str] = frozenset()) -> None:
        self.allow = allow
        self.failing = failing
        self.calls: list[tuple[str, int, float]] = []
        self.opened: list[socket.socket] = []

    def __call__(self, ip: str, port: int, timeout: float) -> socket.socket:
        self.calls.append((ip, port, timeout))
        if not self.allow:
            raise AssertionError(f"connector must not be called, got {ip}")
        if ip in self.failing:
            raise ConnectionRefusedError(f"{ip} refused")
        ours, theirs = socket.socketpair()
        self.opened += [ours, theirs]
        return ours

    def close(self) -> None:
        for sock in self.opened:
            sock.close()


@pytest.fixture
def connector():
    recording = RecordingConnector()
    yield recording
    recording.close()


REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "cloud-metadata"),
    ("169.254.170.2", "cloud-metadata"),
    ("168.63.129.16", "cloud-metadata"),
    ("100.100.100.200", "cloud-metadata"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this-network"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.10", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmark"),
    # inet_aton spellings
    ("2130706433", "loopback"),
    ("0177.0.0.1", "loopback"),
    ("0x7f.1", "loopback"),
    ("0x7f000001", "loopback"),
    ("127.1", "loopback"),
    ("0x7f.0.0.0x1", "loopback"),
    ("012.0.0.1", "private"),
    ("3232235777", "private"),
    ("0", "unspecified"),
    ("127.0.0.1.", "loopback"),
    # IPv6 and the IPv4 forms it embeds
    ("::1", "loopback"),
    ("[::1]", "loopback"),
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "cloud-metadata"),
    ("::ffff:7f00:1", "loopback"),
    ("::127.0.0.1", "loopback"),
    ("::8.8.8.8", "reserved"),
    ("64:ff9b::a00:1", "private"),
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b:1::1", "reserved"),
    ("2002:7f00:1::1", "loopback"),
    ("2002:a9fe:a9fe::", "cloud-metadata"),
    ("2002:c0a8:101::", "private"),
    ("fe80::1", "link-local"),
    ("fe80::1%1", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456:789a::1", "private"),
    ("fd00:ec2::254", "cloud-metadata"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2001::1", "reserved"),
    ("100::1", "reserved"),
    ("4000::1", "reserved"),
    # names resolving to refused addresses
    ("localhost.test", "loopback"),
    ("mixed.test", "private"),
    ("mixed-v6.test", "loopback"),
    ("metadata.google.internal", "cloud-metadata"),
    ("mapped.test", "private"),
    ("garbage.test", "unparseable"),
]


@pytest.mark.parametrize(("host", "reason"), REFUSED)
def test_refused_hosts_never_reach_the_connector(host: str, reason: str) -> None:
    never = RecordingConnector(allow=False)
    guard = NetGuard(allow_private=False, resolver=stub_resolver, connector=never)

    with pytest.raises(BlockedAddressError) as caught:
        guard.connect(host, 80, 5.0)

    assert never.calls == []
    assert caught.value.refusal == reason
    assert caught.value.host == host
    assert host in str(caught.value)
    assert caught.value.address in str(caught.value)
    assert reason in str(caught.value)
    assert isinstance(caught.value, MetadataHttpError)


@pytest.mark.parametrize(
    ("host", "expected_ip"),
    [
        ("93.184.216.34", "93.184.216.34"),
        ("2606:4700::1111", "2606:4700::1111"),
        ("[2606:4700::1111]", "2606:4700::1111"),
        ("public.test", "93.184.216.34"),
        ("1572395042", "93.184.216.34"),
        ("0x5d.0xb8.0xd8.0x22", "93.184.216.34"),
        ("::ffff:93.184.216.34", "::ffff:5db8:d822"),
        ("64:ff9b::808:808", "64:ff9b::808:808"),
    ],
)
def test_public_addresses_reach_the_connector_with_the_checked_ip(
    host: str, expected_ip: str, connector: RecordingConnector
) -> None:
    guard = NetGuard(allow_private=False, resolver=stub_resolver, connector=connector)

    sock = guard.connect(host, 8080, 2.5)

    assert connector.calls == [(expected_ip, 8080, pytest.approx(2.5, abs=0.1))]
    assert sock is connector.opened[0]


def test_allow_private_lets_loopback_through(connector: RecordingConnector) -> None:
    guard = NetGuard(allow_private=True, resolver=stub_resolver, connector=connector)

    guard.connect("127.0.0.1", 80, 1.0)
    guard.connect("localhost.test", 81, 1.0)

    assert [(ip, port) for ip, port, _ in connector.calls] == [("127.0.0.1", 80), ("127.0.0.1", 81)]


def test_allow_private_still_refuses_unparseable_resolver_answers() -> None:
    guard = NetGuard(allow_private=True, resolver=stub_resolver, connector=RecordingConnector())

    with pytest.raises(BlockedAddressError, match="unparseable"):
        guard.connect("garbage.test", 80, 1.0)


def test_next_checked_address_is_tried_when_one_refuses(connector: RecordingConnector) -> None:
    connector.failing = frozenset({"93.184.216.34"})
    guard = NetGuard(allow_private=False, resolver=stub_resolver, connector=connector)

    guard.connect("two-public.test", 443, 1.0)

    assert [call[0] for call in connector.calls] == ["93.184.216.34", "2606:4700::1111"]


def test_last_connect_error_is_raised_when_every_address_fails(
    connector: RecordingConnector,
) -> None:
    connector.failing = frozenset({"93.184.216.34"})
    guard = NetGuard(allow_private=False, resolver=stub_resolver, connector=connector)

    with pytest.raises(ConnectionRefusedError):
        guard.connect("public.test", 443, 1.0)


def test_connect_timeout_is_one_budget_for_all_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    calls: list[tuple[str, float]] = []
    monkeypatch.setattr(netguard, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    def slow(ip: str, port: int, timeout: float) -> socket.socket:
        calls.append((ip, timeout))
        clock[0] += 0.75
        raise TimeoutError(f"{ip} timed out")

    guard = NetGuard(resolver=stub_resolver, connector=slow)

    with pytest.raises(TimeoutError):
        guard.connect("three-public.test", 443, 1.0)
    assert calls == [("93.184.216.34", 1.0), ("2606:4700::1111", 0.25)]


def test_resolution_failures_surface_as_gaierror() -> None:
    guard = NetGuard(resolver=stub_resolver, connector=RecordingConnector(allow=False))

    with pytest.raises(socket.gaierror):
        guard.connect("nowhere.test", 80, 1.0)
    with pytest.raises(socket.gaierror):
        guard.connect("empty.test", 80, 1.0)


def test_guard_refuses_private_addresses_by_default() -> None:
    guard = NetGuard(resolver=stub_resolver, connector=RecordingConnector(allow=False))

    with pytest.raises(BlockedAddressError):
        guard.connect("10.0.0.1", 80, 1.0)


def test_blocked_address_error_keeps_its_job_reason_and_pickles() -> None:
    error = BlockedAddressError("h.test", "10.0.0.1", "private")

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  # our own bytes, a round trip

    assert (copy.host, copy.address, copy.refusal) == ("h.test", "10.0.0.1", "private")
    assert copy.reason == MetadataHttpError.reason
    assert str(copy) == str(error)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_not_classified(address: str) -> None:
    assert classify_address(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("1.2.3", "1.2.0.3"),
        ("0x", "0.0.0.0"),
        ("[::1]", "::1"),
        ("256.1.1.1", None),
        ("1.2.3.4.5", None),
        ("08.1.1.1", None),
        ("1.2.3.0x100", None),
        ("4294967296", None),
        ("example.com", None),
        ("1e100", None),
        ("", None),
    ],
)
def test_parse_ip_literal_follows_inet_aton(host: str, expected: str | None) -> None:
    parsed = parse_ip_literal(host)

    assert (None if parsed is None else str(parsed)) == expected


def test_system_resolver_reads_numeric_hosts_without_dns() -> None:
    assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]


def test_tcp_connector_connects_to_a_loopback_listener() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with tcp_connector("127.0.0.1", port, 2.0) as client:
            accepted, _ = server.accept()
            accepted.close()
            assert client.getpeername() == ("127.0.0.1", port)
