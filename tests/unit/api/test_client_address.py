"""The client address a refresh is counted against (docs/marketplace-api.md#client-address)."""

from __future__ import annotations

import ipaddress

import pytest

from api.client_address import client_address, quota_key
from shared.config import Settings

PROXIES = Settings(trusted_proxies=("10.0.0.0/8", "192.0.2.1", "fd00::/8")).trusted_proxy_networks()


def address(remote: str | None, forwarded: str | None = None) -> str:
    return str(client_address(remote, forwarded, PROXIES))


def test_without_a_trusted_proxy_remote_addr_is_the_client() -> None:
    assert address("203.0.113.9") == "203.0.113.9"
    assert address("203.0.113.9", "198.51.100.1") == "203.0.113.9"  # the client's own claim
    assert str(client_address("10.0.0.1", "198.51.100.1", ())) == "10.0.0.1"


def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() -> None:
    assert address("10.0.0.1", "198.51.100.1") == "198.51.100.1"
    assert address("192.0.2.1", "1.1.1.1, 198.51.100.1") == "198.51.100.1"
    # Proxies in a chain are skipped; what the client wrote to the left is never believed.
    assert address("10.0.0.1", "6.6.6.6, 198.51.100.1, 10.2.3.4, 192.0.2.1") == "198.51.100.1"


def test_a_chain_of_trusted_proxies_only_names_its_left_most_hop() -> None:
    assert address("10.0.0.1", "10.9.9.9, 10.0.0.2") == "10.9.9.9"


def test_a_trusted_proxy_without_the_header_is_the_client() -> None:
    assert address("10.0.0.1") == "10.0.0.1"
    assert address("10.0.0.1", "") == "10.0.0.1"


def test_a_garbled_hop_stops_the_walk_at_the_last_proxy() -> None:
    assert address("10.0.0.1", "198.51.100.1, unknown") == "10.0.0.1"
    assert address("10.0.0.1", "198.51.100.1, garbage, 10.0.0.2") == "10.0.0.2"


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("198.51.100.1:4711", "198.51.100.1"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
        (" 2001:db8::7 ", "2001:db8::7"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
    ],
)
def test_hops_are_read_as_proxies_write_them(forwarded: str, client: str) -> None:
    assert address("10.0.0.1", forwarded) == client


def test_ipv6_proxies_and_mapped_remote_addresses() -> None:
    assert address("fd00::1", "2001:db8::7") == "2001:db8::7"
    assert address("::ffff:10.0.0.1", "198.51.100.1") == "198.51.100.1"


def test_a_remote_addr_that_is_no_ip_address_is_taken_as_it_is() -> None:
    assert address("unix:/run/api.sock", "198.51.100.1") == "unix:/run/api.sock"
    assert address(None, "198.51.100.1") == "unknown"


def test_an_ipv6_client_is_counted_by_its_slash_64() -> None:
    one = ipaddress.ip_address("2001:db8:1:2::1")
    other = ipaddress.ip_address("2001:db8:1:2:ffff::9")
    assert quota_key(one) == quota_key(other) == "2001:db8:1:2::/64"
    assert quota_key(ipaddress.ip_address("2001:db8:1:3::1")) != quota_key(one)
    assert quota_key(ipaddress.ip_address("198.51.100.1")) == "198.51.100.1"
