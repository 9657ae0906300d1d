"""Simulated IPFS content, answered as a gateway does: the file at `/ipfs/<cid>`, and the block
itself for the trustless gateway protocol (`?format=raw` or `Accept: application/vnd.ipld.raw`).

CIDs are real ones, made with the service's own block library (`shared.metadata.ipfs_blocks`):
a small file is a CIDv1 raw leaf (the file is its block), or a one-block dag-pb UnixFS file
(CIDv0 or v1) as `ipfs add` writes it. A forging gateway sends other bytes than the CID's
under the same headers, so the service's check has something to catch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from shared.metadata.ipfs_blocks import (
    RAW_CODEC,
    RAW_CONTENT_TYPE,
    encode_file_block,
    make_cid,
)


@dataclass(frozen=True)
class Stored:
    file: bytes
    block: bytes
    media_type: str


@dataclass(frozen=True)
class GatewayAnswer:
    status: int
    body: bytes
    content_type: str


class IpfsContent:
    """Files by CID, shared by every simulated gateway (they all "have" the same content)."""

    def __init__(self) -> None:
        self._stored: dict[str, Stored] = {}
        self._lock = threading.Lock()

    def add(
        self,
        file: bytes,
        media_type: str = "application/json",
        *,
        codec: str = RAW_CODEC,
        version: int = 1,
    ) -> str:
        """Store `file` as one block (a raw leaf, or dag-pb: the only kind a CIDv0 names) and
        return its CID (base32 for v1, base58 `Qm...` for v0)."""
        block = file if codec == RAW_CODEC else encode_file_block(file)
        cid = make_cid(codec, block, version=version)
        with self._lock:
            self._stored[cid] = Stored(file, block, media_type)
        return cid

    def answer(self, target: str, accept: str | None, *, forge: bool = False) -> GatewayAnswer:
        """A gateway's answer to GET `target` (path and query). `forge`: the right headers
        but bytes that are not the CID's (a broken or malicious gateway)."""
        parts = urlsplit(target)
        segments = parts.path.split("/")
        with self._lock:
            stored = self._stored.get(segments[2]) if len(segments) == 3 else None
        if segments[:2] != ["", "ipfs"] or stored is None:
            return GatewayAnswer(404, b"not found", "text/plain")
        raw = parse_qs(parts.query).get("format") == ["raw"] or RAW_CONTENT_TYPE in (accept or "")
        if raw:
            block = _forged(stored.block) if forge else stored.block
            return GatewayAnswer(200, block, RAW_CONTENT_TYPE)
        return GatewayAnswer(200, _forged(stored.file) if forge else stored.file, stored.media_type)


def _forged(data: bytes) -> bytes:
    """Other bytes of about the same size: what a gateway serving the wrong content sends."""
    return data.replace(b"#", b"# forged ", 1) if b"#" in data else data + b" "
