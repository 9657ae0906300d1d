"""ipfs:// content checked against its CID, through gateways on loopback addresses and the real
Redis: the block is asked for, hashed and unwrapped; a gateway that sends other bytes is
counted against and the next one asked (docs/gateways.md#verified-content)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import multihash
import pytest
import redis
from prometheus_client import REGISTRY
from support.http_server import Reply, ScriptedServer

from shared.errors import ContentMismatchError, InvalidReason, MetadataSizeExceededError
from shared.host_slot_keys import KEY_PREFIX, LIMIT_PREFIX
from shared.images.errors import ImageHttpError
from shared.indexing.gateway_fetch import GatewayFetcher
from shared.indexing.polite_fetch import MetadataService
from shared.metadata.fetch import FetchLimits, MetadataFetcher
from shared.metadata.gateways import HEALTH_PREFIX, GatewayPool
from shared.metadata.ipfs_blocks import (
    RAW_CONTENT_TYPE,
    encode_file_block,
    encode_linked_block,
    make_cid,
)
from shared.metadata.netguard import NetGuard
from shared.metadata.uris import FetchableUrl, GatewaySettings, fetchable_url
from shared.wiring import build_image_cacher, metadata_service

ADDRESSES = ("127.0.0.26", "127.0.0.27")
DOC = b'{"sip": 16, "name": "Verified Monkey #1"}'
FORGED = b'{"sip": 16, "name": "Forged Monkey #1"}'
RAW = {"Content-Type": RAW_CONTENT_TYPE}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000"
    "000d49444154789c6360606060000000050001a5f645400000000049454e44ae426082"
)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    forget_gateways(client)
    yield client
    forget_gateways(client)
    client.close()


def forget_gateways(client: redis.Redis) -> None:
    for prefix in (HEALTH_PREFIX, KEY_PREFIX, LIMIT_PREFIX):
        for address in ADDRESSES:
            client.delete(prefix + address)


@pytest.fixture
def gateways() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    with ScriptedServer(ADDRESSES[0]) as a, ScriptedServer(ADDRESSES[1]) as b:
        yield a, b


def serve(server: ScriptedServer, cid: str, file: bytes, block: bytes | None = None) -> None:
    """Answer `/ipfs/<cid>` with the file and `?format=raw` with the block, as a trustless
    gateway does (the block is the file for a raw leaf)."""
    server.route(f"/ipfs/{cid}", Reply(body=file, headers={"Content-Type": "application/json"}))
    block = file if block is None else block
    server.route(f"/ipfs/{cid}?format=raw", Reply(body=block, headers=RAW))


def fetcher_for(client: redis.Redis, *, verify: bool = True, max_bytes: int = 100_000):
    limits = FetchLimits(timeout_s=5, total_timeout_s=5, max_bytes=max_bytes)
    fetcher = MetadataFetcher(limits, NetGuard(allow_private=True))
    gateway_pool = GatewayPool(client, refresh_s=0.0, flush_every=1, unknown_p90_s=2.0)
    return GatewayFetcher(fetcher, gateway_pool, None, None, threads=4, verify=verify)


def through(uri: str, *servers: ScriptedServer) -> FetchableUrl:
    return fetchable_url(uri, GatewaySettings(ipfs=",".join(s.url for s in servers)))


def content_counted(gateway: str, outcome: str) -> float:
    labels = {"gateway": gateway, "outcome": outcome}
    return REGISTRY.get_sample_value("token_metadata_ipfs_content_total", labels) or 0.0


def test_a_raw_leaf_is_asked_as_a_block_and_verified(client, gateways) -> None:
    a, _ = gateways
    cid = make_cid("raw", DOC)
    serve(a, cid, DOC)
    before = content_counted(ADDRESSES[0], "verified")
    fetched = fetcher_for(client).fetch(through(f"ipfs://{cid}", a))
    assert (fetched.body, fetched.verified) == (DOC, True)
    assert a.hits == {f"/ipfs/{cid}?format=raw": 1}
    assert a.headers[f"/ipfs/{cid}?format=raw"]["Accept"] == RAW_CONTENT_TYPE
    assert content_counted(ADDRESSES[0], "verified") == before + 1


@pytest.mark.parametrize("version", [0, 1])
def test_a_one_block_dag_pb_file_is_verified_and_unwrapped(client, gateways, version) -> None:
    a, _ = gateways
    block = encode_file_block(DOC)
    cid = make_cid("dag-pb", block, version=version)
    serve(a, cid, DOC, block)
    fetched = fetcher_for(client).fetch(through(f"ipfs://{cid}", a))
    assert (fetched.body, fetched.verified) == (DOC, True)
    assert a.hits == {f"/ipfs/{cid}?format=raw": 1}


def test_wrong_bytes_fail_over_to_the_gateway_with_the_right_ones(client, gateways) -> None:
    a, b = gateways
    cid = make_cid("raw", DOC)
    serve(a, cid, FORGED)  # the wrong document, announced as the block
    serve(b, cid, DOC)
    fetcher = fetcher_for(client)
    mismatched = content_counted(ADDRESSES[0], "mismatched")
    verified = content_counted(ADDRESSES[1], "verified")
    fetched = fetcher.fetch(through(f"ipfs://{cid}", a, b))
    assert (fetched.body, fetched.verified) == (DOC, True)
    assert a.hits[f"/ipfs/{cid}?format=raw"] == 1
    assert content_counted(ADDRESSES[0], "mismatched") == mismatched + 1
    assert content_counted(ADDRESSES[1], "verified") == verified + 1
    health = fetcher.pool.health(ADDRESSES)
    assert health[ADDRESSES[0]].error_rate > 0
    assert health[ADDRESSES[0]].score < health[ADDRESSES[1]].score
    # Its health now sends the next document to the good gateway first.
    assert fetcher.pool.order(through(f"ipfs://{cid}", a, b).through_every_gateway())[
        0
    ].url.startswith(b.url)


def test_wrong_bytes_from_every_gateway_end_the_token_invalid(client, gateways) -> None:
    a, b = gateways
    cid = make_cid("raw", DOC)
    serve(a, cid, FORGED)
    serve(b, cid, FORGED + b" ")
    fetcher = fetcher_for(client)
    service = MetadataService(
        fetcher.fetcher, GatewaySettings(ipfs=f"{a.url},{b.url}"), 3, gateway_fetcher=fetcher
    )
    with pytest.raises(ContentMismatchError) as raised:
        service.load(f"ipfs://{cid}", 1)
    assert raised.value.reason == InvalidReason.METADATA_HTTP_ERROR
    assert cid in str(raised.value)
    assert a.hits[f"/ipfs/{cid}?format=raw"] == 1  # not retried at once: no immediate retries


def test_a_file_of_several_blocks_is_fetched_as_before_and_unverified(client, gateways) -> None:
    a, _ = gateways
    leaves = [DOC[:20], DOC[20:]]
    root = encode_linked_block(
        [multihash.digest(leaf, "sha2-256").encode() for leaf in leaves], [len(x) for x in leaves]
    )
    cid = make_cid("dag-pb", root)
    serve(a, cid, DOC, root)
    before = content_counted(ADDRESSES[0], "unverified")
    fetched = fetcher_for(client).fetch(through(f"ipfs://{cid}", a))
    assert (fetched.body, fetched.verified) == (DOC, False)
    assert a.hits == {f"/ipfs/{cid}?format=raw": 1, f"/ipfs/{cid}": 1}
    assert content_counted(ADDRESSES[0], "unverified") == before + 1


@pytest.mark.parametrize("status", [400, 406, 501])
def test_a_gateway_refusing_raw_blocks_is_asked_for_the_file(client, gateways, status) -> None:
    a, _ = gateways
    cid = make_cid("dag-pb", encode_file_block(DOC))
    a.route(f"/ipfs/{cid}?format=raw", Reply(status, b"no raw blocks here"))
    a.route(f"/ipfs/{cid}", Reply(body=DOC))
    fetched = fetcher_for(client).fetch(through(f"ipfs://{cid}", a))
    assert (fetched.body, fetched.verified) == (DOC, False)
    assert a.hits[f"/ipfs/{cid}"] == 1


def test_a_gateway_ignoring_format_raw_serves_the_file_unverified(client, gateways) -> None:
    a, _ = gateways
    cid = make_cid("dag-pb", encode_file_block(DOC))
    a.route(f"/ipfs/{cid}", Reply(body=DOC, headers={"Content-Type": "application/json"}))
    fetched = fetcher_for(client).fetch(through(f"ipfs://{cid}", a))
    assert (fetched.body, fetched.verified) == (DOC, False)
    assert a.hits == {f"/ipfs/{cid}?format=raw": 1}  # its answer was the file: no second ask


def test_a_raw_cid_answered_with_other_bytes_is_a_mismatch_whatever_the_type(
    client, gateways
) -> None:
    a, _ = gateways
    cid = make_cid("raw", DOC)
    a.route(f"/ipfs/{cid}", Reply(body=FORGED, headers={"Content-Type": "application/json"}))
    with pytest.raises(ContentMismatchError):
        fetcher_for(client).fetch(through(f"ipfs://{cid}", a))


def test_a_path_after_the_cid_is_fetched_as_before_and_unverified(client, gateways) -> None:
    a, _ = gateways
    cid = make_cid("dag-pb", encode_file_block(b"a directory, really"))
    a.route(f"/ipfs/{cid}/1.json", Reply(body=DOC))
    before = content_counted(ADDRESSES[0], "unverified")
    fetched = fetcher_for(client).fetch(through(f"ipfs://{cid}/1.json", a))
    assert (fetched.body, fetched.verified) == (DOC, False)
    assert a.hits == {f"/ipfs/{cid}/1.json": 1}
    assert content_counted(ADDRESSES[0], "unverified") == before + 1


def test_verification_switched_off_fetches_as_before(client, gateways) -> None:
    a, _ = gateways
    cid = make_cid("raw", DOC)
    serve(a, cid, DOC)
    fetched = fetcher_for(client, verify=False).fetch(through(f"ipfs://{cid}", a))
    assert (fetched.body, fetched.verified) == (DOC, False)
    assert a.hits == {f"/ipfs/{cid}": 1}


def test_a_verified_file_over_the_size_limit_is_too_large(client, gateways) -> None:
    a, _ = gateways
    block = encode_file_block(DOC)
    cid = make_cid("dag-pb", block)
    serve(a, cid, DOC, block)
    with pytest.raises(MetadataSizeExceededError):
        fetcher_for(client, max_bytes=len(DOC) - 1).fetch(through(f"ipfs://{cid}", a))


def test_an_image_comes_verified_from_the_good_gateway(
    client, gateways, settings, sessions, tmp_path
) -> None:
    a, b = gateways
    cid = make_cid("raw", PNG)
    serve(a, cid, PNG[:-1] + b"\x00")
    serve(b, cid, PNG)
    many = replace(
        settings, public_gateway_ipfs=f"{a.url},{b.url}", image_cache_local_dir=str(tmp_path)
    )
    cacher = build_image_cacher(many, sessions)
    mismatched = content_counted(ADDRESSES[0], "mismatched")
    assert cacher.download(fetchable_url(f"ipfs://{cid}", cacher.gateways)) == PNG
    assert content_counted(ADDRESSES[0], "mismatched") == mismatched + 1
    serve(b, cid, PNG[:-1] + b"\x01")  # now no gateway has the right bytes
    with pytest.raises(ImageHttpError):
        cacher.download(fetchable_url(f"ipfs://{cid}", cacher.gateways))


def test_the_setting_reaches_both_fetchers(settings, sessions) -> None:
    off = replace(settings, ipfs_verify_content=False)
    cacher = build_image_cacher(off, sessions)
    assert cacher.gateway_fetcher is not None
    assert cacher.gateway_fetcher.verify is False
    service = metadata_service(off)
    assert service.gateway_fetcher is not None
    assert service.gateway_fetcher.verify is False
    assert metadata_service(settings).gateway_fetcher.verify is True  # type: ignore[union-attr]
