"""Token URI templating, gateway rewriting and `data:` URIs (docs/token-processing.md#uris)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_to_bytes, urlsplit

from shared.errors import MetadataParseError

_ID_TEMPLATE = re.compile(r"\{id\}", re.IGNORECASE)
_LOCALE_TEMPLATE = re.compile(r"\{locale\}", re.IGNORECASE)
_WORD = r"[a-z0-9!#$&^_.+-]+"
_DATA_URI = re.compile(
    rf"^data:(?P<type>{_WORD}/{_WORD}(?:;{_WORD}={_WORD})*)?(?P<b64>;base64)?,(?P<data>.*)$",
    re.IGNORECASE | re.DOTALL,
)

Gateway = Literal["ipfs", "arweave"]


@dataclass(frozen=True)
class GatewaySettings:
    """Where ipfs:// and ar:// URIs are fetched from (PUBLIC_GATEWAY_* settings). `ipfs` and
    `arweave` may list several gateways, comma-separated (docs/gateways.md)."""

    ipfs: str = "https://cloudflare-ipfs.com"
    ipfs_extra_header: str | None = None
    ipfs_replaced: tuple[str, ...] = (
        "ipfs.io",
        "dweb.link",
        "gateway.pinata.cloud",
        "cloudflare-ipfs.com",
        "infura-ipfs.io",
    )
    arweave: str = "https://arweave.net"


@dataclass(frozen=True)
class FetchableUrl:
    """An http(s) URL to GET, the gateway it goes through and the headers that gateway needs;
    for a gateway URL, the same document through each other configured gateway, in order."""

    url: str
    gateway: Gateway | None
    headers: Mapping[str, str]
    other_gateways: tuple[FetchableUrl, ...] = ()

    def through_every_gateway(self) -> tuple[FetchableUrl, ...]:
        """This URL and its other gateways' (just this one for a plain http(s) URL)."""
        first = FetchableUrl(self.url, self.gateway, self.headers)
        return (first, *self.other_gateways)


@dataclass(frozen=True)
class DataUri:
    """The decoded payload of a `data:` URI and its declared media type."""

    media_type: str | None
    data: bytes


def token_specific_uri(uri: str, token_number: int, locale: str | None = None) -> str:
    """Fill a token URI template for one token (and locale), as SIP-016 and SIP-009 define."""
    number = str(token_number)
    uri = _ID_TEMPLATE.sub(lambda _: number, uri)
    uri = _LOCALE_TEMPLATE.sub(lambda _: locale or "", uri)
    return uri.replace("$TOKEN_ID", number)


def fetchable_url(uri: str, gateways: GatewaySettings) -> FetchableUrl:
    """Turn a token URI into the http(s) URL we fetch, so every scheme goes through one fetcher."""
    uri = uri.strip()
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise MetadataParseError(f"Invalid uri: {uri}") from exc
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.hostname:
        if parts.hostname in gateways.ipfs_replaced:
            return _ipfs(gateways, parts.path, parts.query)
        return FetchableUrl(url=uri, gateway=None, headers={})
    if scheme in ("ipfs", "ipns") and parts.netloc:
        # The raw netloc keeps the CID's case; `.hostname` would lower-case it.
        path = parts.path if parts.netloc.lower() == scheme else f"/{parts.netloc}{parts.path}"
        return _ipfs(gateways, f"/{scheme}{path}", parts.query)
    if scheme == "ar" and parts.netloc:
        path = f"/{parts.netloc}{parts.path}"
        urls = [
            FetchableUrl(_join(base, path, parts.query), "arweave", {})
            for base in gateway_bases(gateways.arweave)
        ]
        return _with_others(urls)
    raise MetadataParseError(f"Invalid uri: {uri}")


def gateway_bases(setting: str) -> tuple[str, ...]:
    """The gateways a PUBLIC_GATEWAY_* setting lists, comma-separated, in order."""
    return tuple(part.strip() for part in setting.split(",") if part.strip())


def gateway_hosts(gateways: GatewaySettings) -> tuple[str, ...]:
    """The host name of every configured IPFS and Arweave gateway."""
    bases = gateway_bases(gateways.ipfs) + gateway_bases(gateways.arweave)
    return tuple((urlsplit(base).hostname or "").lower() for base in bases)


def ipfs_gateway_headers(gateways: GatewaySettings) -> dict[str, str]:
    """The extra header some private IPFS gateways require, parsed from `Key: Value`; only
    the first IPFS gateway gets it (docs/gateways.md#extra-header)."""
    key, sep, value = (gateways.ipfs_extra_header or "").partition(":")
    if not sep or not key.strip():
        return {}
    return {key.strip(): value.strip()}


def is_data_uri(uri: str) -> bool:
    """Whether the URI carries its payload inline, so there is nothing to fetch."""
    return uri.lstrip()[:5].lower() == "data:"


def parse_data_uri(uri: str) -> DataUri:
    """Decode a `data:` URI into bytes, keeping its media type for image checks."""
    match = _DATA_URI.match(uri.strip())
    if match is None:
        raise MetadataParseError(f"Invalid data uri: {uri[:100]}")
    media_type = match["type"].split(";")[0].lower() if match["type"] else None
    payload = match["data"]
    if match["b64"]:
        return DataUri(media_type, _decode_base64(payload, uri))
    if payload.startswith("%"):
        return DataUri(media_type, unquote_to_bytes(payload))
    return DataUri(media_type, payload.encode("utf-8"))


def decode_data_uri(uri: str) -> str:
    """The text inside a `data:` URI, e.g. inline JSON metadata, read as a fetched body is:
    UTF-8 without a byte order mark, invalid bytes replaced by U+FFFD."""
    return parse_data_uri(uri).data.decode("utf-8-sig", errors="replace")


def _decode_base64(payload: str, uri: str) -> bytes:
    """Strict base64 that tolerates whitespace, URL-escaping and missing padding."""
    compact = "".join(unquote_to_bytes(payload).decode("ascii", "replace").split())
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MetadataParseError(f"Invalid data uri: {uri[:100]}") from exc


def _ipfs(gateways: GatewaySettings, path: str, query: str) -> FetchableUrl:
    """The IPFS gateways' URLs; the first gateway's carries the extra header."""
    bases = gateway_bases(gateways.ipfs)
    first = FetchableUrl(_join(bases[0], path, query), "ipfs", ipfs_gateway_headers(gateways))
    others = [FetchableUrl(_join(base, path, query), "ipfs", {}) for base in bases[1:]]
    return _with_others([first, *others])


def _with_others(urls: list[FetchableUrl]) -> FetchableUrl:
    first = urls[0]
    return FetchableUrl(first.url, first.gateway, first.headers, tuple(urls[1:]))


def _join(base: str, path: str, query: str) -> str:
    """Gateway base + path, keeping the query string, which Hiro's API dropped
    (docs/reference-differences.md#gateway-query-strings)."""
    base_parts = urlsplit(base.rstrip("/"))
    return base_parts._replace(path=base_parts.path + path, query=query, fragment="").geturl()
