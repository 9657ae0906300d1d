"""Token contracts of every kind processed by the real job code, from a Stacks API database and
a node on loopback, against metadata hosts that behave well and badly. Checks stored rows.

The rules are in docs/token-processing.md. Differences from Hiro's API checked here (anchors of
docs/reference-differences.md): data-uris, zero-values, localized-properties, falsy-attributes,
gateway-query-strings.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select
from support.http_server import Reply, ScriptedServer
from support.indexer import Indexer
from support.processes import free_port

from devnet.scenario import (
    SftToken,
    fungible_token,
    nft_collection,
    semi_fungible_token,
)
from shared.db import session_scope
from shared.indexing.polite_fetch import MetadataService
from shared.indexing.processing import Processor
from shared.indexing.rate_limits import RateLimitedHosts
from shared.metadata.fetch import FetchLimits, MetadataFetcher
from shared.metadata.netguard import NetGuard
from shared.metadata.uris import GatewaySettings
from shared.models import (
    Job,
    JobStatus,
    RateLimitedHost,
    Token,
)


@pytest.fixture
def indexer(settings, sessions, stacks_api_database_url) -> Indexer:
    fast = replace(settings, metadata_fetch_timeout_ms=400, metadata_max_payload_byte_size=10_000)
    return Indexer(fast, sessions, stacks_api_database_url)


@pytest.fixture
def host() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def doc(**fields: Any) -> Reply:
    return Reply(200, json.dumps(fields).encode(), {"Content-Type": "application/json"})


# --- SIP-010 -------------------------------------------------------------------------------


def test_ft_contract_facts_and_metadata_are_stored(indexer: Indexer, host: ScriptedServer) -> None:
    uri = host.route("/coin.json", doc(name="Coin", description="A coin", image="http://i/c.png"))
    coin = fungible_token(
        "coin", 2, symbol="COIN", decimals=6, total_supply=1_997_500_000_000, token_uri=uri
    )
    indexer.run(coin)
    token, job = indexer.token(coin)
    assert job.status == JobStatus.DONE
    assert (token.name, token.symbol, token.decimals, token.total_supply, token.uri) == (
        "Coin",
        "COIN",
        6,
        1_997_500_000_000,
        uri,
    )
    [metadata] = indexer.metadata(token)
    assert (metadata["name"], metadata["description"], metadata["default"]) == (
        "Coin",
        "A coin",
        True,
    )


def test_ft_zero_decimals_and_supply_are_stored_as_zero(indexer, host) -> None:
    coin = fungible_token(
        "zero",
        2,
        symbol="ZERO",
        decimals=0,
        total_supply=0,
        token_uri=host.route("/zero.json", doc(name="Zero")),
    )
    indexer.run(coin)
    token, _job = indexer.token(coin)
    assert (token.decimals, token.total_supply) == (0, 0)


def test_ft_supply_clarity_error_leaves_supply_empty(indexer, host) -> None:
    coin = fungible_token(
        "alex",
        2,
        symbol="ALEX",
        erroring_functions=("get-total-supply",),
        token_uri=host.route("/alex.json", doc(name="Alex")),
    )
    indexer.run(coin)
    token, job = indexer.token(coin)
    assert job.status == JobStatus.DONE
    assert token.total_supply is None
    assert token.symbol == "ALEX"


def test_ft_metadata_failure_keeps_the_contract_facts(indexer, host) -> None:
    coin = fungible_token(
        "no-meta", 2, symbol="NOM", token_uri=host.route("/nom.json", Reply(500, b"oops"))
    )
    indexer.run(coin)
    token, job = indexer.token(coin)
    assert job.status == JobStatus.DONE
    assert token.symbol == "NOM"
    assert indexer.metadata(token) == []


def test_ft_whose_getters_fail_is_invalid_109(indexer, host) -> None:
    coin = fungible_token(
        "broken",
        2,
        symbol="BRK",
        clarity_error=True,
        token_uri=host.route("/brk.json", doc(name="B")),
    )
    indexer.run(coin)
    _token, job = indexer.token(coin)
    assert (job.status, job.invalid_reason) == (JobStatus.INVALID, 109)


# --- SIP-013 -------------------------------------------------------------------------------


def test_sft_tokens_come_from_mint_prints_with_their_own_facts(indexer, host) -> None:
    host.route("/items/1.json", doc(name="Sword"))
    host.route("/items/7.json", doc(name="Shield"))
    items = semi_fungible_token(
        "items",
        2,
        [SftToken(1, 0, 500), SftToken(7, 2, 700_000)],
        token_uri=host.url + "/items/{id}.json",
    )
    indexer.run(items)
    sword, sword_job = indexer.token(items, 1)
    shield, _ = indexer.token(items, 7)
    assert sword_job.status == JobStatus.DONE
    assert (sword.decimals, sword.total_supply, sword.uri) == (0, 500, host.url + "/items/1.json")
    assert (shield.decimals, shield.total_supply) == (2, 700_000)
    assert indexer.metadata(shield)[0]["name"] == "Shield"


# --- SIP-009 and SIP-016 -------------------------------------------------------------------


def test_localized_metadata_gets_a_row_per_locale_without_leaking(indexer, host) -> None:
    host.route(
        "/loc/1.json",
        doc(
            name="Changos #1",
            description="Monkeys",
            image="http://img/1.png",
            attributes=[{"trait_type": "Background", "value": "Blue"}],
            properties={"external_url": "http://x", "collection_name": "Changos", "artist": "Ana"},
            localization={
                "uri": host.url + "/loc/{id}-{locale}.json",
                "default": "en",
                "locales": ["en", "es-MX"],
            },
        ),
    )
    host.route(
        "/loc/1-es-MX.json",
        doc(
            name="Changos Mutantes #1",
            attributes=[{"trait_type": "Fondo", "value": "Azul"}],
            properties={"description": "Changos", "collection_name": "Changos Mutantes"},
        ),
    )
    nft = nft_collection("changos", 1, 2, token_uri=host.url + "/loc/{id}.json")
    indexer.run(nft)
    token, _ = indexer.token(nft)
    default, spanish = indexer.metadata(token)
    assert (default["locale"], default["default"], default["uri"]) == (
        "en",
        True,
        host.url + "/loc/1.json",
    )
    assert default["properties"] == {
        "external_url": "http://x",
        "collection_name": "Changos",
        "artist": "Ana",
    }
    assert spanish["locale"] == "es-MX"
    assert spanish["default"] is False
    assert spanish["name"] == "Changos Mutantes #1"
    assert spanish["image"] == "http://img/1.png"  # inherited
    assert spanish["description"] == "Monkeys"  # inherited
    assert spanish["attributes"] == [("Fondo", "Azul", None)]  # replaced, not merged
    assert spanish["properties"] == {
        "external_url": "http://x",
        "collection_name": "Changos Mutantes",
        "artist": "Ana",
        "description": "Changos",
    }


def test_attribute_values_of_any_json_type_are_kept(indexer, host) -> None:
    nft = nft_collection(
        "types",
        1,
        2,
        token_uri=host.route(
            "/t.json",
            doc(
                name="T",
                attributes=[
                    {"trait_type": "zero", "value": 0},
                    {"trait_type": "no", "value": False},
                    {"trait_type": "empty", "value": ""},
                    {"trait_type": "list", "value": [1, "a"]},
                    {"trait_type": "level", "value": 3, "display_type": "number"},
                ],
                properties={"flag": True, "nested": {"a": None}},
            ),
        ),
    )
    indexer.run(nft)
    [metadata] = indexer.metadata(indexer.token(nft)[0])
    assert metadata["attributes"] == [
        ("zero", 0, None),
        ("no", False, None),
        ("empty", "", None),
        ("list", [1, "a"], None),
        ("level", 3, "number"),
    ]
    assert metadata["properties"] == {"flag": True, "nested": {"a": None}}


def test_json5_documents_are_accepted(indexer, host) -> None:
    body = b"{name: 'Lenient', // a comment\n description: 'trailing',}"
    nft = nft_collection("lenient", 1, 2, token_uri=host.route("/l.json", Reply(200, body)))
    indexer.run(nft)
    [metadata] = indexer.metadata(indexer.token(nft)[0])
    assert metadata["name"] == "Lenient"


def test_documents_are_utf8_without_bom_and_with_bad_bytes_replaced(indexer, host) -> None:
    body = b'\xef\xbb\xbf{"name": "\xc3\xb1\xff"}'
    nft = nft_collection("bom", 1, 2, token_uri=host.route("/bom.json", Reply(200, body)))
    indexer.run(nft)
    [metadata] = indexer.metadata(indexer.token(nft)[0])
    assert metadata["name"] == "ñ\ufffd"


def test_redirects_are_followed(indexer, host) -> None:
    host.route("/final.json", doc(name="Moved"))
    nft = nft_collection(
        "moved",
        1,
        2,
        token_uri=host.route(
            "/start.json", Reply(302, b"", {"Location": host.url + "/final.json"})
        ),
    )
    indexer.run(nft)
    assert indexer.metadata(indexer.token(nft)[0])[0]["name"] == "Moved"


def test_data_uri_metadata_is_stored(indexer) -> None:
    nft = nft_collection(
        "inline", 1, 2, token_uri="data:application/json,%7B%22name%22%3A%22Inline%22%7D"
    )
    indexer.run(nft)
    token, job = indexer.token(nft)
    assert job.status == JobStatus.DONE
    assert indexer.metadata(token)[0]["name"] == "Inline"


# --- failure classes (docs/token-processing.md#errors) ---------------------------------------


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(200, b"<html><body>Just a moment...</body></html>"), 105),  # HTML, not JSON
        (Reply(200, b""), 105),  # empty body
        (Reply(200, b"[1, 2, 3]"), 105),  # a JSON array
        (Reply(200, b'{"description": "no name"}'), 105),  # not SIP-016
        (Reply(404, b"gone"), 107),
        (Reply(200, b'{"name": "' + b"x" * 20_000 + b'"}'), 101),  # over the size limit
    ],
    ids=["html", "empty", "array", "no-name", "404", "oversized"],
)
def test_each_bad_answer_ends_invalid_with_its_reason(indexer, host, reply: Reply, reason) -> None:
    nft = nft_collection("bad", 1, 2, token_uri=host.route("/bad.json", reply))
    indexer.run(nft)
    _token, job = indexer.token(nft)
    assert (job.status, job.invalid_reason) == (JobStatus.INVALID, reason)


def test_a_server_error_is_retried_later_with_its_reason(indexer, host) -> None:
    """A 5xx may pass: back-off retries, then `invalid` 107 (test_fetch_history.py)."""
    nft = nft_collection("boom", 1, 2, token_uri=host.route("/boom.json", Reply(500, b"boom")))
    indexer.run(nft)
    _token, job = indexer.token(nft)
    assert (job.status, job.invalid_reason, job.retry_count) == (JobStatus.PENDING, 107, 1)
    assert job.retry_after is not None


def test_parse_errors_are_retried_immediately_before_ending_invalid(indexer, host) -> None:
    nft = nft_collection("html", 1, 2, token_uri=host.route("/h.json", Reply(200, b"<html>")))
    indexer.run(nft)
    assert host.hits["/h.json"] == 3  # METADATA_MAX_IMMEDIATE_URI_RETRIES


def test_timeouts_are_retried_then_end_invalid_103(indexer, host) -> None:
    nft = nft_collection("slow", 1, 2, token_uri=host.route("/s.json", Reply(delay_s=1.5)))
    indexer.run(nft)
    _token, job = indexer.token(nft)
    assert (job.status, job.invalid_reason) == (JobStatus.INVALID, 103)
    assert host.hits["/s.json"] == 3


def test_refused_connection_ends_invalid_107(indexer) -> None:
    nft = nft_collection("refused", 1, 2, token_uri=f"http://127.0.0.1:{free_port()}/x.json")
    indexer.run(nft)
    assert indexer.token(nft)[1].invalid_reason == 107


def test_tls_error_ends_invalid_107(indexer, host) -> None:
    # An https URL to a server that only speaks plain HTTP fails the TLS handshake.
    tls_url = host.url.replace("http://", "https://") + "/t.json"
    host.route("/t.json", doc(name="never"))
    nft = nft_collection("tls", 1, 2, token_uri=tls_url)
    indexer.run(nft)
    assert indexer.token(nft)[1].invalid_reason == 107


def test_dns_failure_ends_invalid_107(indexer, host, sessions) -> None:
    def no_such_host(hostname: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, f"{hostname} does not resolve")

    def stub_dns(processor: Processor) -> Processor:
        guard = NetGuard(allow_private=True, resolver=no_such_host)
        fetcher = MetadataFetcher(FetchLimits(timeout_s=1, total_timeout_s=2), guard)
        service = MetadataService(fetcher, GatewaySettings(), 3, RateLimitedHosts(sessions))
        return replace(processor, metadata=service)

    indexer.customize = stub_dns
    nft = nft_collection("dns", 1, 2, token_uri="http://metadata.does-not-exist.test/1.json")
    indexer.run(nft)
    assert indexer.token(nft)[1].invalid_reason == 107


def test_private_addresses_are_refused_unless_allowed(indexer, host) -> None:
    indexer.settings = replace(indexer.settings, metadata_fetch_allow_private_networks=False)
    nft = nft_collection("private", 1, 2, token_uri=host.route("/p.json", doc(name="P")))
    indexer.run(nft)
    _token, job = indexer.token(nft)
    assert (job.status, job.invalid_reason) == (JobStatus.INVALID, 107)
    assert host.hits["/p.json"] == 0  # nothing was sent


def test_rate_limited_host_is_remembered_and_skipped(indexer, host, sessions) -> None:
    host.route("/1.json", Reply(429, b"slow down", {"Retry-After": "120"}))
    host.route("/2.json", doc(name="two"))
    nft = nft_collection("limited", 2, 2, token_uri=host.url + "/{id}.json")
    indexer.run(nft)
    _t1, job1 = indexer.token(nft, 1)
    _t2, job2 = indexer.token(nft, 2)
    assert (job1.status, job1.retry_count) == (JobStatus.PENDING, 1)
    assert (job1.retry_after - job1.updated_at).total_seconds() == pytest.approx(120, abs=5)
    with session_scope(sessions) as s:
        assert s.scalars(select(RateLimitedHost.hostname)).all() == ["127.0.0.1"]
    # Token 2 ran after the 429 (ids are processed in order) and never reached the host.
    assert job2.status == JobStatus.PENDING
    assert "rate-limited" in job2.last_error
    assert host.hits["/2.json"] == 0


# --- gateways, contract-level outcomes -----------------------------------------------------


def test_ipfs_uris_go_through_the_configured_gateway_with_its_header(indexer, host) -> None:
    cid = "QmXoypizjW3WknFiJnKLwHCnL72vedxjQkDDP1mXWo6uco"
    host.route(f"/ipfs/{cid}/1.json", doc(name="From IPFS"))
    indexer.settings = replace(
        indexer.settings,
        public_gateway_ipfs=host.url,
        public_gateway_ipfs_extra_header="Authorization: Bearer 1234567890",
    )
    nft = nft_collection("ipfs", 1, 2, token_uri=f"ipfs://ipfs/{cid}/{{id}}.json")
    indexer.run(nft)
    token, job = indexer.token(nft)
    assert job.status == JobStatus.DONE
    assert token.uri == f"ipfs://ipfs/{cid}/1.json"  # stored as the contract gave it
    assert indexer.metadata(token)[0]["name"] == "From IPFS"
    sent = {k.lower(): v for k, v in host.headers[f"/ipfs/{cid}/1.json"].items()}
    assert sent["authorization"] == "Bearer 1234567890"


def test_token_without_uri_is_processed_without_metadata(indexer) -> None:
    nft = nft_collection("no-uri", 1, 2, token_uri=None)
    indexer.run(nft)
    token, job = indexer.token(nft)
    assert (job.status, token.uri, token.updated_at is not None) == (JobStatus.DONE, None, True)
    assert indexer.metadata(token) == []


def test_contract_whose_last_token_id_fails_is_invalid_109(indexer, sessions) -> None:
    nft = nft_collection("broken-nft", 3, 2, clarity_error=True)
    indexer.run(nft)
    with session_scope(sessions) as s:
        job = s.scalars(select(Job).where(Job.smart_contract_id.is_not(None))).one()
        tokens = s.scalars(select(Token)).all()
    assert (job.status, job.invalid_reason, tokens) == (JobStatus.INVALID, 109, [])


def test_collections_above_the_token_cap_are_not_enumerated(indexer, sessions) -> None:
    indexer.settings = replace(indexer.settings, metadata_max_nft_contract_token_count=10)
    nft = nft_collection("huge", 11, 2)
    indexer.run(nft)
    with session_scope(sessions) as s:
        job = s.scalars(select(Job).where(Job.smart_contract_id.is_not(None))).one()
        assert job.status == JobStatus.DONE
        assert s.scalars(select(Token)).all() == []
