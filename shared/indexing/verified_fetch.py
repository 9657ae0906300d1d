"""One gateway's answer for an ipfs:// document or image, checked against its CID when the
CID names a block that may be the whole file (docs/gateways.md#verified-content).

The gateway is asked for the block (`?format=raw`, `Accept: application/vnd.ipld.raw`); the
block is hashed and compared with the CID, then unwrapped. What cannot be checked from one
block is fetched as before and counted `unverified`:

- a path after the CID (`ipfs://<cid>/1.json`: a directory entry), another codec, a hash
  function the library cannot compute;
- a dag-pb file of several blocks (its root block has links): a second request, as before;
- a gateway that does not serve raw blocks: it answers 400, 406, 415 or 501 (then the file
  is asked for as before), or it sends the file itself (a Content-Type other than raw).

Bytes that do not hash to the CID while the gateway says they are the block (raw
Content-Type), or any answer but the block for a raw CID (whose file is its block), are the
gateway's fault: ContentMismatchError, and the next gateway is asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from shared.errors import ContentMismatchError, MetadataHttpError, MetadataSizeExceededError
from shared.metadata.fetch import Fetched
from shared.metadata.gateways import IPFS_CONTENT, gateway_host
from shared.metadata.ipfs_blocks import (
    BLOCK_OVERHEAD_BYTES,
    RAW_CODEC,
    RAW_CONTENT_TYPE,
    BlockCid,
    block_cid,
    file_in_block,
    matches,
    raw_block_url,
)
from shared.metadata.uris import FetchableUrl

# What a gateway without the trustless protocol may answer a `?format=raw` request.
NO_RAW_BLOCKS = frozenset({400, 406, 415, 501})
VERIFIED, UNVERIFIED, MISMATCHED = "verified", "unverified", "mismatched"

# One request to the gateway (its rate limit and slot kept): the target and its size limit.
FetchOne = Callable[[FetchableUrl, int], Fetched]


def fetch_checked(
    fetch: FetchOne, target: FetchableUrl, max_bytes: int, *, verify: bool = True
) -> Fetched:
    """The document or image `target` names, from its gateway: verified when its CID allows,
    as before otherwise. Raises ContentMismatchError when the gateway sent other bytes."""
    block_id = block_cid(target.url) if verify and target.gateway == "ipfs" else None
    if block_id is None:
        return _counted(target, fetch(target, max_bytes))
    asked = replace(
        target,
        url=raw_block_url(target.url),
        headers={**target.headers, "Accept": RAW_CONTENT_TYPE},
        other_gateways=(),
    )
    try:
        answer = fetch(asked, max_bytes + BLOCK_OVERHEAD_BYTES)
    except MetadataHttpError as exc:
        if exc.status not in NO_RAW_BLOCKS:
            raise
        return _counted(target, fetch(target, max_bytes))  # no raw blocks here: as before
    return _checked(fetch, target, block_id, answer, max_bytes)


def _checked(
    fetch: FetchOne, target: FetchableUrl, block_id: BlockCid, answer: Fetched, max_bytes: int
) -> Fetched:
    host = gateway_host(target)
    sent_block = _media_type(answer.content_type) == RAW_CONTENT_TYPE
    if matches(block_id, answer.body):
        content = file_in_block(block_id, answer.body)
        if content is None:  # the file goes on in other blocks (or is no file): as before
            return _counted(target, fetch(target, max_bytes))
        _within(content, max_bytes, target)
        IPFS_CONTENT.labels(host, VERIFIED).inc()
        return replace(answer, body=content, verified=True)
    if sent_block or block_id.codec == RAW_CODEC:
        IPFS_CONTENT.labels(host, MISMATCHED).inc()
        raise ContentMismatchError(
            f"{host} sent {len(answer.body)} bytes that are not the block of {block_id.text}",
            status=answer.status,
        )
    # A dag-pb CID answered with something other than a block: the gateway ignored
    # `format=raw` and sent the file, which one block's hash cannot check.
    _within(answer.body, max_bytes, target)
    return _counted(target, answer)


def _counted(target: FetchableUrl, fetched: Fetched) -> Fetched:
    if target.gateway == "ipfs":
        IPFS_CONTENT.labels(gateway_host(target), UNVERIFIED).inc()
    return fetched


def _within(content: bytes, max_bytes: int, target: FetchableUrl) -> None:
    if len(content) > max_bytes:
        raise MetadataSizeExceededError(f"{target.url} holds over {max_bytes} bytes")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()
