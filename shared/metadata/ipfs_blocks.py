"""Checking that an IPFS gateway served the content a CID names (docs/gateways.md#verified-content).

A CID is the hash of one block. When the block is the whole file (a raw leaf, or a dag-pb
UnixFS file with no links), asking the gateway for the block itself (the trustless gateway
protocol: `?format=raw`, `Accept: application/vnd.ipld.raw`) lets us hash it, compare with
the CID and unwrap the file: the bytes cannot have been altered by the gateway or on the way.

CIDs and multihashes are read by `py-cid` and `py-multihash` (multiformats' own Python
libraries); dag-pb and UnixFS are protobuf messages, read by the `protobuf` runtime from the
two small schemas below (the dag-pb and UnixFS specifications' own), built as descriptors
here so that no generated code is checked in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import cid as cids
import multihash
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

RAW_CONTENT_TYPE = "application/vnd.ipld.raw"
RAW_CODEC, DAG_PB_CODEC = "raw", "dag-pb"
# UnixFS Data.Type values whose Data is file content.
_UNIXFS_RAW, _UNIXFS_FILE = 0, 2
# Hash functions whose match proves the content: cryptographic ones, and `identity` (the
# content is inside the CID). The library also computes md5, sha1 and murmur3, which a
# gateway could collide with; a CID hashed with them is fetched unverified, as an unknown one.
PROVING_HASHES = ("sha2-", "sha3-", "shake-", "blake2b-", "blake2s-", "blake3")
IDENTITY_NAMES = ("id", "identity")
# A dag-pb block wraps its file in a few bytes of protobuf fields: the block may be this much
# larger than the file it holds (the file itself is checked against the caller's limit).
BLOCK_OVERHEAD_BYTES = 1024


@dataclass(frozen=True)
class BlockCid:
    """A CID whose block may be the whole file: its text, codec and multihash."""

    text: str
    codec: str
    multihash: bytes


class BlockMismatchError(Exception):
    """The bytes a gateway sent as a block do not hash to the CID."""


def block_cid(url: str) -> BlockCid | None:
    """The CID a gateway URL names when its block may be the whole file: `/ipfs/<cid>` with
    nothing after it, codec raw or dag-pb, hashed by a cryptographic function the library
    computes. None otherwise (a path into a directory, another codec or hash function, not
    a CID)."""
    segments = urlsplit(url).path.split("/")
    if len(segments) < 2 or segments[-2] != "ipfs" or not segments[-1]:
        return None
    return _block_cid(segments[-1])


@functools.lru_cache(maxsize=4096)
def _block_cid(text: str) -> BlockCid | None:
    """Cached: the library's parse costs some 70 us, and a CID is read again for each gateway
    a document is asked of."""
    try:
        parsed = cids.from_string(text)
        hashed = multihash.decode(bytes(parsed.multihash))
        multihash.digest(b"", hashed.code)  # a function the library knows and can compute
    except Exception:  # the libraries raise ValueError, KeyError, TypeError... for a non-CID
        return None
    if parsed.codec not in (RAW_CODEC, DAG_PB_CODEC):
        return None
    name = str(hashed.name)
    if name not in IDENTITY_NAMES and not name.startswith(PROVING_HASHES):
        return None
    return BlockCid(text, parsed.codec, bytes(parsed.multihash))


def raw_block_url(url: str) -> str:
    """The URL asking the gateway for the block itself: `format=raw` added to the query."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "format"]
    return parts._replace(query=urlencode([*query, ("format", "raw")])).geturl()


def matches(block_id: BlockCid, block: bytes) -> bool:
    """Whether `block` hashes to the CID's multihash (with the CID's function and length)."""
    try:
        return bool(multihash.decode(block_id.multihash).verify(block))
    except Exception:  # a function the library cannot compute after all: no proof, no match
        return False


def file_in_block(block_id: BlockCid, block: bytes) -> bytes | None:
    """The file a verified block holds; None when it is not the whole file (a dag-pb node
    with links, a directory, or a node that does not parse: every gateway has the same)."""
    if block_id.codec == RAW_CODEC:
        return block
    try:
        node = _PB_NODE()
        node.ParseFromString(block)
        if len(node.Links) or not node.HasField("Data"):
            return None
        unixfs = _UNIXFS_DATA()
        unixfs.ParseFromString(node.Data)
    except DecodeError:
        return None
    if not unixfs.HasField("Type") or unixfs.Type not in (_UNIXFS_RAW, _UNIXFS_FILE):
        return None
    if len(unixfs.blocksizes):  # its content is in other blocks
        return None
    return bytes(unixfs.Data)


def _messages() -> tuple[Any, Any]:
    """PBNode (dag-pb) and Data (UnixFS) message classes, from their published schemas:

        message PBLink { optional bytes Hash = 1; optional string Name = 2;
                         optional uint64 Tsize = 3; }
        message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }
        message Data { required DataType Type = 1; optional bytes Data = 2;
                       optional uint64 filesize = 3; repeated uint64 blocksizes = 4;
                       optional uint64 hashType = 5; optional uint64 fanout = 6; ... }

    Name is read as bytes (we do not use it, and a name that is not UTF-8 must not make a
    verified block unreadable) and Type as optional (checked here instead)."""
    proto = descriptor_pb2.FieldDescriptorProto
    optional, repeated = proto.LABEL_OPTIONAL, proto.LABEL_REPEATED
    schema = descriptor_pb2.FileDescriptorProto(
        name="token_metadata_ipfs_blocks.proto", package="token_metadata.ipfs", syntax="proto2"
    )

    def message(name: str, fields: list[tuple[str, int, int, int, str | None]]) -> None:
        described = schema.message_type.add(name=name)
        for field_name, number, label, kind, type_name in fields:
            field = described.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name is not None:
                field.type_name = type_name

    message(
        "PBLink",
        [
            ("Hash", 1, optional, proto.TYPE_BYTES, None),
            ("Name", 2, optional, proto.TYPE_BYTES, None),
            ("Tsize", 3, optional, proto.TYPE_UINT64, None),
        ],
    )
    message(
        "PBNode",
        [
            ("Links", 2, repeated, proto.TYPE_MESSAGE, ".token_metadata.ipfs.PBLink"),
            ("Data", 1, optional, proto.TYPE_BYTES, None),
        ],
    )
    message(
        "Data",
        [
            ("Type", 1, optional, proto.TYPE_UINT64, None),
            ("Data", 2, optional, proto.TYPE_BYTES, None),
            ("filesize", 3, optional, proto.TYPE_UINT64, None),
            ("blocksizes", 4, repeated, proto.TYPE_UINT64, None),
            ("hashType", 5, optional, proto.TYPE_UINT64, None),
            ("fanout", 6, optional, proto.TYPE_UINT64, None),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    file = pool.FindFileByName(schema.name)
    return (
        message_factory.GetMessageClass(file.message_types_by_name["PBNode"]),
        message_factory.GetMessageClass(file.message_types_by_name["Data"]),
    )


_PB_NODE, _UNIXFS_DATA = _messages()


def encode_file_block(content: bytes) -> bytes:
    """A dag-pb block holding `content` as a one-block UnixFS file, as `ipfs add` writes it
    (for the simulated gateways and the tests; the service only reads blocks)."""
    unixfs = _UNIXFS_DATA(Type=_UNIXFS_FILE, Data=content, filesize=len(content))
    return bytes(_PB_NODE(Data=unixfs.SerializeToString()).SerializeToString())


def encode_linked_block(child_cids: list[bytes], sizes: list[int]) -> bytes:
    """A dag-pb root node whose file is in other blocks (its links), for tests."""
    unixfs = _UNIXFS_DATA(Type=_UNIXFS_FILE, filesize=sum(sizes), blocksizes=sizes)
    node = _PB_NODE(Data=unixfs.SerializeToString())
    for child, size in zip(child_cids, sizes, strict=True):
        node.Links.add(Hash=child, Name=b"", Tsize=size)
    return bytes(node.SerializeToString())


def make_cid(codec: str, block: bytes, hash_function: str = "sha2-256", version: int = 1) -> str:
    """The text CID of a block (base32 for v1, base58 for v0), for simulations and tests."""
    digest = multihash.digest(block, hash_function).encode()
    made = cids.make_cid(version, codec, digest)
    return str(made) if version == 0 else made.encode("base32").decode()
