"""The simulated IPFS content: real CIDs, files and blocks answered as a trustless gateway
does, forged bytes on request, and a collection whose every token has its own CID."""

from __future__ import annotations

from devnet.ipfs_gateway import IpfsContent
from devnet.node import call_read_only
from devnet.scenario import nft_collection
from shared.clarity import OptionalNone, OptionalSome, ResponseOk, StringAscii, UInt
from shared.metadata.ipfs_blocks import (
    RAW_CONTENT_TYPE,
    block_cid,
    file_in_block,
    matches,
)

DOC = b'{"name": "Monkey #1"}'


def test_a_raw_leaf_is_served_as_file_and_as_its_block() -> None:
    content = IpfsContent()
    cid = content.add(DOC)
    block_id = block_cid(f"http://gw/ipfs/{cid}")
    assert block_id is not None
    assert block_id.codec == "raw"
    file = content.answer(f"/ipfs/{cid}", None)
    assert (file.status, file.body, file.content_type) == (200, DOC, "application/json")
    block = content.answer(f"/ipfs/{cid}?format=raw", None)
    assert (block.body, block.content_type) == (DOC, RAW_CONTENT_TYPE)
    assert matches(block_id, block.body)


def test_a_dag_pb_file_block_is_asked_by_format_or_accept() -> None:
    content = IpfsContent()
    for version in (0, 1):
        cid = content.add(DOC, codec="dag-pb", version=version)
        block_id = block_cid(f"http://gw/ipfs/{cid}")
        assert block_id is not None
        for block in (
            content.answer(f"/ipfs/{cid}?format=raw", None),
            content.answer(f"/ipfs/{cid}", RAW_CONTENT_TYPE),
        ):
            assert block.content_type == RAW_CONTENT_TYPE
            assert matches(block_id, block.body)
            assert file_in_block(block_id, block.body) == DOC
    assert (
        content.answer("/ipfs/QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", None).status == 404
    )


def test_a_forging_gateway_sends_other_bytes_under_the_same_headers() -> None:
    content = IpfsContent()
    cid = content.add(DOC)
    block_id = block_cid(f"http://gw/ipfs/{cid}")
    assert block_id is not None
    forged = content.answer(f"/ipfs/{cid}?format=raw", None, forge=True)
    assert forged.content_type == RAW_CONTENT_TYPE
    assert forged.body != DOC
    assert not matches(block_id, forged.body)


def test_each_token_may_have_its_own_uri() -> None:
    uris = ("ipfs://bafkfirst", "ipfs://bafksecond")
    collection = nft_collection("own-cids", 2, 1, token_uris=uris)
    url = "http://127.0.0.1:8999"
    for number, uri in enumerate(uris, start=1):
        answer = call_read_only(
            collection.contract_id, collection, "get-token-uri", [UInt(number)], url
        )
        assert answer == ResponseOk(OptionalSome(StringAscii(uri)))
    unminted = call_read_only(collection.contract_id, collection, "get-token-uri", [UInt(3)], url)
    assert unminted == ResponseOk(OptionalNone())
