"""Who is asking: the client address a request's quota is counted against
(docs/marketplace-api.md#client-address).

REMOTE_ADDR, unless it is one of TRUSTED_PROXIES: then X-Forwarded-For is read from the
right (each proxy appends the address it received the request from) and the first address
that is not itself a trusted proxy is the client. Entries to the left of it were written by
the client and are never believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from shared.config import IpNetwork

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A client that holds one IPv6 address usually holds its whole /64.
IPV6_CLIENT_PREFIX = 64


def client_address(
    remote_addr: str | None, forwarded_for: str | None, trusted: Sequence[IpNetwork]
) -> IpAddress | str:
    """The client's address; REMOTE_ADDR as it is when it is not an IP address (a unix
    socket), with X-Forwarded-For ignored."""
    peer = _address(remote_addr or "")
    if peer is None:
        return remote_addr or "unknown"
    if not _is_trusted(peer, trusted) or not forwarded_for:
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        hop = _address(entry)
        if hop is None:  # garbled: believe no further than the last proxy
            return client
        client = hop
        if not _is_trusted(hop, trusted):
            return client
    return client  # every hop a trusted proxy: the left-most one asked


def quota_key(address: IpAddress | str) -> str:
    """What a client's requests are counted under: an IPv4 address, an IPv6 /64."""
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return str(address)


def _address(text: str) -> IpAddress | None:
    """An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IpAddress, trusted: Sequence[IpNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)
