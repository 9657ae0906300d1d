"""The SSRF guard: untrusted URLs reach public internet addresses only, on every connection."""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from shared.errors import MetadataHttpError

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], list[str]]
Connector = Callable[[str, int, float], socket.socket]


def _rules(*rules: tuple[str, str]) -> tuple[tuple[IPv4Network | IPv6Network, str], ...]:
    """Build an ordered (network, reason) table; the first matching network wins."""
    return tuple((ipaddress.ip_network(net), reason) for net, reason in rules)


_IPV4_RULES = _rules(
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private"),
    ("100.100.100.200/32", "cloud-metadata"),  # Alibaba Cloud
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("168.63.129.16/32", "cloud-metadata"),  # Azure wire server
    ("169.254.169.254/32", "cloud-metadata"),  # AWS, GCP, Azure, OCI, DigitalOcean
    ("169.254.169.253/32", "cloud-metadata"),  # AWS DNS
    ("169.254.170.2/32", "cloud-metadata"),  # AWS ECS task metadata
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.192/32", "cloud-metadata"),  # Oracle Cloud (legacy)
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmark"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_IPV6_RULES = _rules(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fd00:ec2::254/128", "cloud-metadata"),  # AWS IMDS over IPv6
    ("64:ff9b:1::/48", "reserved"),  # local-use NAT64
    ("100::/64", "reserved"),  # discard-only
    ("2001:db8::/32", "documentation"),
    ("2001:2::/48", "benchmark"),
    ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo, ORCHID
    ("3fff::/20", "documentation"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_INET_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


class BlockedAddressError(MetadataHttpError):
    """A metadata URL pointed at an address untrusted URLs must never reach."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"Refusing to connect to {host}: {address} is a {reason} address")
        self.host = host
        self.address = address
        self.refusal = reason  # not `reason`: UserError.reason is the job's invalid-reason code

    def __reduce__(self) -> tuple[type[BlockedAddressError], tuple[str, str, str]]:
        """Pickle by constructor arguments so the error survives a trip between processes."""
        return (type(self), (self.host, self.address, self.refusal))


def classify_address(ip: IPAddress) -> str | None:
    """Why an address must be refused, or None when it is a public internet address."""
    if isinstance(ip, IPv4Address):
        return _first_match(ip, _IPV4_RULES)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = classify_address(embedded)
        if reason is not None or ip not in _IPV4_COMPATIBLE:
            return reason
    reason = _first_match(ip, _IPV6_RULES)
    if reason is None and ip not in _GLOBAL_UNICAST:
        return "reserved"
    return reason


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names without DNS, read the way libc's inet_aton would."""
    host = host.strip().removeprefix("[").removesuffix("]")
    host = host[:-1] if host.endswith(".") else host
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _inet_aton(host)


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve a host name with the system resolver (socket.getaddrinfo)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def tcp_connector(ip: str, port: int, timeout: float) -> socket.socket:
    """Open a TCP connection to an address that is already checked, without a DNS lookup."""
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        ip, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class NetGuard:
    """Resolves, checks and connects in one step, so what was checked is what is connected."""

    allow_private: bool = False
    resolver: Resolver = field(default=system_resolver)
    connector: Connector = field(default=tcp_connector)

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        """Connect to the first reachable checked address; `timeout` covers all attempts."""
        deadline = time.monotonic() + timeout
        last_error: OSError = TimeoutError(f"Connecting to {host} timed out")
        for address in self.checked_addresses(host, port):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return self.connector(address, port, remaining)
            except OSError as exc:
                last_error = exc
        raise last_error

    def checked_addresses(self, host: str, port: int) -> list[str]:
        """Every address of a host, refusing the host if any one of them is not public."""
        literal = parse_ip_literal(host)
        found = [str(literal)] if literal is not None else self.resolver(host, port)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"No address found for {host}")
        addresses = [_checked(host, address, self.allow_private) for address in found]
        return list(dict.fromkeys(str(ip) for ip in addresses))


def _checked(host: str, address: str, allow_private: bool) -> IPAddress:
    """Parse one resolved address and refuse it unless it is public (or private is allowed)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise BlockedAddressError(host, address, "unparseable") from None
    reason = None if allow_private else classify_address(ip)
    if reason is not None:
        raise BlockedAddressError(host, str(ip), reason)
    return ip


def _first_match(
    ip: IPAddress, rules: Iterable[tuple[IPv4Network | IPv6Network, str]]
) -> str | None:
    """The reason of the first network in a rule table containing the address."""
    return next((reason for network, reason in rules if ip in network), None)


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64 or 6to4 forms)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _inet_aton(host: str) -> IPv4Address | None:
    """Decimal, octal and hex IPv4 spellings with 1 to 4 parts (`2130706433`, `0x7f.1`)."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_ATON_PART.fullmatch(p) for p in parts):
        return None
    values = [_inet_aton_number(part) for part in parts]
    *leading, last = values
    if any(value > 0xFF for value in leading) or last >= 1 << (8 * (5 - len(values))):
        return None
    number = last
    for index, value in enumerate(leading):
        number |= value << (24 - 8 * index)
    return IPv4Address(number)


def _inet_aton_number(part: str) -> int:
    """One inet_aton part: `0x` hex, leading-zero octal or decimal."""
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if part.startswith("0"):
        return int(part, 8)
    return int(part)
