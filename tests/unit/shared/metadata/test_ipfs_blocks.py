"""Reading a CID from a gateway URL, checking a block against it and unwrapping the file
(docs/gateways.md#verified-content)."""

from __future__ import annotations

import cid as cids
import multihash
import pytest

from shared.metadata.ipfs_blocks import (
    block_cid,
    encode_file_block,
    encode_linked_block,
    file_in_block,
    make_cid,
    matches,
    raw_block_url,
)

GATEWAY = "https://gw.example/ipfs/"
DOC = b'{"name": "Monkey #1"}'


def test_a_raw_leaf_is_its_own_file() -> None:
    cid = make_cid("raw", DOC)
    assert cid.startswith("bafkrei")  # CIDv1, raw, sha2-256, base32: what `ipfs add` writes
    block_id = block_cid(GATEWAY + cid)
    assert block_id is not None
    assert block_id.codec == "raw"
    assert matches(block_id, DOC)
    assert file_in_block(block_id, DOC) == DOC


def test_a_cidv0_names_a_dag_pb_block_whose_unixfs_data_is_the_file() -> None:
    # `ipfs add` of "hello world\n": the well-known CIDv0, so the block is built as go-ipfs does.
    block = encode_file_block(b"hello world\n")
    assert make_cid("dag-pb", block, version=0) == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    block_id = block_cid(GATEWAY + "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
    assert block_id is not None
    assert block_id.codec == "dag-pb"
    assert matches(block_id, block)
    assert file_in_block(block_id, block) == b"hello world\n"


def test_a_cidv1_dag_pb_file_is_unwrapped_too() -> None:
    block = encode_file_block(DOC)
    block_id = block_cid(GATEWAY + make_cid("dag-pb", block))
    assert block_id is not None
    assert matches(block_id, block)
    assert file_in_block(block_id, block) == DOC


def test_other_bytes_do_not_match() -> None:
    block_id = block_cid(GATEWAY + make_cid("raw", DOC))
    assert block_id is not None
    assert not matches(block_id, DOC + b" ")
    assert not matches(block_id, b"")


def test_a_dag_pb_file_of_several_blocks_is_not_in_its_root_block() -> None:
    leaves = [b"a" * 10, b"b" * 10]
    children = [multihash.digest(leaf, "sha2-256").encode() for leaf in leaves]
    root = encode_linked_block(children, [10, 10])
    block_id = block_cid(GATEWAY + make_cid("dag-pb", root))
    assert block_id is not None
    assert matches(block_id, root)
    assert file_in_block(block_id, root) is None


def test_a_dag_pb_block_that_is_not_a_file_is_not_unwrapped() -> None:
    block = b"\x0a\x02\x08\x01"  # PBNode{Data: UnixFS{Type: Directory}}
    block_id = block_cid(GATEWAY + make_cid("dag-pb", block))
    assert block_id is not None
    assert file_in_block(block_id, block) is None
    assert file_in_block(block_id, b"\xff\xff\xff") is None  # not protobuf at all


@pytest.mark.parametrize("hash_function", ["sha2-512", "sha3-256", "blake2b-256", "blake3"])
def test_other_cryptographic_hash_functions_are_checked(hash_function: str) -> None:
    block_id = block_cid(GATEWAY + make_cid("raw", DOC, hash_function))
    assert block_id is not None
    assert matches(block_id, DOC)
    assert not matches(block_id, DOC + b" ")


@pytest.mark.parametrize("hash_function", ["md5", "sha1", "murmur3-128"])
def test_a_hash_a_gateway_could_collide_is_not_verifiable(hash_function: str) -> None:
    assert block_cid(GATEWAY + make_cid("raw", DOC, hash_function)) is None


def test_a_hash_function_the_library_cannot_compute_is_not_verifiable() -> None:
    # A known multihash code (0xd6, bmt) with no implementation in the library.
    digest = bytes([0xD6, 0x01, 32]) + bytes(32)
    text = cids.make_cid(1, "raw", digest).encode("base32").decode()
    assert block_cid(GATEWAY + text) is None


def test_a_path_after_the_cid_cannot_be_verified_from_one_block() -> None:
    cid = make_cid("raw", DOC)
    assert block_cid(f"{GATEWAY}{cid}/1.json") is None
    assert block_cid(f"{GATEWAY}{cid}/") is None


def test_other_codecs_and_non_cids_are_not_verifiable() -> None:
    dag_cbor = make_cid("dag-cbor", b"\xa0")
    assert block_cid(GATEWAY + dag_cbor) is None
    assert block_cid(GATEWAY + "not-a-cid") is None
    assert block_cid("https://gw.example/ipns/example.com") is None


def test_a_gateway_with_a_base_path_still_names_the_cid() -> None:
    cid = make_cid("raw", DOC)
    assert block_cid(f"https://gw.example/base/ipfs/{cid}?x=1") is not None


def test_the_raw_block_url_keeps_the_query_and_asks_for_raw_once() -> None:
    assert raw_block_url("https://gw.example/ipfs/c") == "https://gw.example/ipfs/c?format=raw"
    assert (
        raw_block_url("https://gw.example/ipfs/c?a=1&format=car")
        == "https://gw.example/ipfs/c?a=1&format=raw"
    )
