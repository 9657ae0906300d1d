"""Documents and answers hostile to a database or a worker, each next to a good neighbour in
one worker batch: every one ends stored (made storable) or `invalid` with its reason, never
`failed`, and never costs the neighbour anything (docs/token-processing.md#storable-documents).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select
from support.http_server import Reply, ScriptedServer
from support.indexer import Indexer

from devnet.scenario import nft_collection
from shared.db import session_scope
from shared.metadata import parse
from shared.models import JobStatus, Metadata, MetadataAttribute

MB = 1024 * 1024
GOOD = b'{"name": "neighbour"}'


@pytest.fixture
def indexer(settings, sessions, stacks_api_database_url) -> Indexer:
    quick = replace(settings, metadata_fetch_timeout_ms=400)  # the default 1 MB size limit
    return Indexer(quick, sessions, stacks_api_database_url, batched=True)


@pytest.fixture
def host() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def index_beside_a_neighbour(indexer: Indexer, host: ScriptedServer, reply: Reply) -> Any:
    """Token 1 answers `reply`, token 2 a good document; both in one batch. Returns token
    1's job, its stored documents, and checks token 2 was stored."""
    host.route("/1.json", reply)
    host.route("/2.json", Reply(200, GOOD))
    nft = nft_collection("poison", 2, 2, token_uri=host.url + "/{id}.json")
    indexer.run(nft)
    neighbour, neighbour_job = indexer.token(nft, 2)
    assert neighbour_job.status == JobStatus.DONE
    assert [row["name"] for row in indexer.metadata(neighbour)] == ["neighbour"]
    token, job = indexer.token(nft, 1)
    with session_scope(indexer.sessions) as session:
        raws = session.scalars(select(Metadata.raw).where(Metadata.token_id == token.id)).all()
    return token, job, raws


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        (b'{"name": "a\\u0000b", "k\\u0000": ["\\u0000"]}', {"name": "ab", "k": [""]}),
        (b'{"name": "a\\ud83db", "d": "\\ude00"}', {"name": "a\ufffdb", "d": "\ufffd"}),
        (b'{"name": "\xc3\xb1\xff\xfe"}', {"name": "\u00f1\ufffd\ufffd"}),
        (
            b'{"name": "n", "x": [NaN, Infinity, -Infinity]}',
            {"name": "n", "x": ["NaN", "Infinity", "-Infinity"]},
        ),
        (
            b'{"name": "n", "id": 340282366920938463463374607431768211455, "ok": 12}',
            {"name": "n", "id": "340282366920938463463374607431768211455", "ok": 12},
        ),
        (
            b'{"name": "n", "attributes": {"a": 1}, "properties": [1, 2]}',
            {"name": "n", "attributes": {"a": 1}, "properties": [1, 2]},
        ),
        (
            b'{"name": "n", "description": null, "image": null, "attributes": null}',
            {"name": "n", "description": None, "image": None, "attributes": None},
        ),
        (b'{"name": "first", "name": "last"}', {"name": "last"}),
    ],
    ids=[
        "nul",
        "lone-surrogates",
        "invalid-utf8",
        "non-finite-numbers",
        "huge-integer",
        "non-object-attributes-and-properties",
        "null-fields",
        "duplicate-keys",
    ],
)
def test_a_poison_document_is_stored_made_storable(indexer, host, body: bytes, stored) -> None:
    _token, job, raws = index_beside_a_neighbour(indexer, host, Reply(200, body))
    assert job.status == JobStatus.DONE
    assert raws == [stored]


def test_6000_attributes_and_a_250_kb_string_are_stored(indexer, host) -> None:
    attributes = [{"trait_type": f"t{n}", "value": n} for n in range(6000)]
    document = {"name": "big", "description": "d" * 250_000, "attributes": attributes}
    token, job, raws = index_beside_a_neighbour(
        indexer, host, Reply(200, json.dumps(document).encode())
    )
    assert job.status == JobStatus.DONE
    assert raws == [document]
    with session_scope(indexer.sessions) as session:
        count = session.scalar(
            select(func.count())
            .select_from(MetadataAttribute)
            .join(Metadata)
            .where(Metadata.token_id == token.id)
        )
    assert count == 6000


def gzip_bomb(decoded_bytes: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as stream:
        for _ in range(decoded_bytes // MB):
            stream.write(bytes(MB))
    return out.getvalue()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(200, b'{"name": "n", "x": ' + b"[" * 150 + b"]" * 150 + b"}"), 105),
        (Reply(200, gzip_bomb(100 * MB), {"Content-Encoding": "gzip"}), 101),
        (Reply(200, b'{"name": "slow"}', drip_s=0.1), 103),
        (Reply(200, GOOD, {f"X-H{n}": "1" for n in range(10_000)}), 107),
    ],
    ids=["nested-too-deep", "gzip-bomb", "drip", "header-flood"],
)
def test_a_hostile_answer_ends_invalid_with_its_reason(indexer, host, reply, reason) -> None:
    _token, job, raws = index_beside_a_neighbour(indexer, host, reply)
    assert (job.status, job.invalid_reason) == (JobStatus.INVALID, reason)
    assert raws == []


def test_thousands_of_headers_within_the_cap_are_read(indexer, host) -> None:
    reply = Reply(200, b'{"name": "many"}', {f"X-H{n}": "1" for n in range(3000)})
    _token, job, raws = index_beside_a_neighbour(indexer, host, reply)
    assert job.status == JobStatus.DONE
    assert raws == [{"name": "many"}]


def test_a_value_postgres_refuses_ends_invalid_105_not_failed(indexer, host, monkeypatch) -> None:
    """The safety net behind the cleaning: with it switched off, a lone surrogate reaches
    Postgres, which refuses it; the token is invalid with the reason, its neighbour stored."""
    monkeypatch.setattr(parse, "storable", lambda value: value)
    _token, job, raws = index_beside_a_neighbour(indexer, host, Reply(200, b'{"name": "\\ud83d"}'))
    assert (job.status, job.invalid_reason) == (JobStatus.INVALID, 105)
    assert job.last_error.startswith("Metadata could not be stored")
    assert job.retry_count == 0
    assert raws == []
