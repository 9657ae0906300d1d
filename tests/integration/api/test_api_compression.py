"""Large JSON answers are gzipped for clients that accept it; nothing else changes."""

from __future__ import annotations

import gzip
import json

import pytest
from support.builders import add_contract, add_metadata, add_token

from api.compression import MIN_BYTES, accepts_gzip

PREFIX = "/metadata/v1"


@pytest.fixture
def big_collection(db) -> str:  # type: ignore[no-untyped-def]
    with db.begin() as s:
        contract = add_contract(s)
        for n in range(1, 61):
            add_metadata(
                s, add_token(s, contract, n), name=f"Item #{n}", attributes=[("a", n, None)]
            )
        return contract.principal


def test_a_large_page_is_gzipped_and_decompresses_to_the_plain_answer(client, big_collection):
    url = f"{PREFIX}/nft/{big_collection}?limit=60"
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers
    assert len(plain.data) >= MIN_BYTES
    packed = client.get(url, headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data) / 4
    assert json.loads(gzip.decompress(packed.data)) == plain.json
    assert packed.headers["Access-Control-Allow-Origin"] == "*"


def test_small_answers_and_refusing_clients_get_plain_bodies(client, big_collection):
    small = client.get(f"{PREFIX}/nft/{big_collection}/1", headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 200
    assert "Content-Encoding" not in small.headers
    assert small.json["metadata"]["name"] == "Item #1"
    refused = client.get(
        f"{PREFIX}/nft/{big_collection}?limit=60", headers={"Accept-Encoding": "gzip;q=0"}
    )
    assert "Content-Encoding" not in refused.headers


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("deflate, gzip", True),
        ("GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0", False),
        ("br", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_is_read_with_its_qualities(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted
