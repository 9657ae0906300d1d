"""token_metadata_fetch_outcomes_total counted by the real metadata service (host slots in the
real Redis, rate-limited hosts in the real Postgres) against a loopback metadata host: one
count per attempt, labelled with its kind, host class and outcome; a document fetched fine is
counted when its token's store commits, `ok` or `unchanged`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token
from support.http_server import Reply, ScriptedServer

from shared.config import Settings
from shared.db import session_scope
from shared.errors import JobError
from shared.indexing.polite_fetch import MetadataService
from shared.indexing.rate_limits import RateLimitedHosts
from shared.indexing.tokens import TokenData, TokenRef, add_token_metadata, store_tokens_data
from shared.wiring import host_slots, metadata_service

OUTCOMES = ("ok", "unchanged", "http_error", "timeout", "too_large", "blocked", "rate_limited")


def counts(host_class: str = "http", kind: str = "metadata") -> dict[str, float]:
    def count(outcome: str) -> float:
        labels = {"kind": kind, "host_class": host_class, "outcome": outcome}
        return REGISTRY.get_sample_value("token_metadata_fetch_outcomes_total", labels) or 0.0

    return {outcome: count(outcome) for outcome in OUTCOMES}


def counted(service: MetadataService, uri: str) -> dict[str, float]:
    """What loading `uri` added to the counts, by outcome (only those it changed)."""
    before = counts()
    with contextlib.suppress(JobError):  # the outcome is what is checked
        service.load(uri, 1)
    after = counts()
    return {k: after[k] - before[k] for k in OUTCOMES if after[k] != before[k]}


@pytest.fixture
def host() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def fetch_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        metadata_fetch_timeout_ms=300,
        metadata_max_payload_byte_size=1000,
        metadata_max_immediate_uri_retries=2,
    )


def service_for(settings: Settings, sessions: sessionmaker[Session]) -> MetadataService:
    return metadata_service(settings, RateLimitedHosts(sessions), host_slots(settings))


@pytest.fixture
def service(fetch_settings: Settings, sessions: sessionmaker[Session]) -> Iterator[MetadataService]:
    built = service_for(fetch_settings, sessions)
    yield built
    built.fetcher.close()


def stored(sessions: sessionmaker[Session], service: MetadataService, uri: str) -> None:
    """Fetch a token's documents and store them, as a token job does."""
    with session_scope(sessions) as session:
        token = add_token(session, add_contract(session))
        ref = TokenRef(token.id, token.type, 1, "SP000.unused")
    for _ in range(2):
        data = add_token_metadata(service.load, ref, TokenData(uri=uri))
        with session_scope(sessions) as session:
            store_tokens_data(session, [(ref, data)])


def test_a_document_stored_is_ok_then_unchanged(
    service: MetadataService, host: ScriptedServer, sessions: sessionmaker[Session]
) -> None:
    uri = host.route("/ok.json", Reply(200, json.dumps({"name": "Ok"}).encode()))
    before = {k: counts()[k] for k in ("ok", "unchanged")}
    stored(sessions, service, uri)  # fetched and stored twice, the same document
    after = counts()
    assert (after["ok"] - before["ok"], after["unchanged"] - before["unchanged"]) == (1, 1)


def test_a_document_counts_nothing_until_its_token_is_stored(
    service: MetadataService, host: ScriptedServer, sessions: sessionmaker[Session]
) -> None:
    uri = host.route("/rolled-back.json", Reply(200, json.dumps({"name": "Ok"}).encode()))
    with session_scope(sessions) as session:
        token = add_token(session, add_contract(session))
        ref = TokenRef(token.id, token.type, 1, "SP000.unused")
    data = add_token_metadata(service.load, ref, TokenData(uri=uri))
    before = counts()
    session = sessions()
    store_tokens_data(session, [(ref, data)])
    session.rollback()
    session.close()
    assert counts() == before


def test_a_500_is_an_http_error(service: MetadataService, host: ScriptedServer) -> None:
    uri = host.route("/broken.json", Reply(500, b"oops"))
    assert counted(service, uri) == {"http_error": 1}


def test_each_timed_out_attempt_is_a_timeout(
    service: MetadataService, host: ScriptedServer
) -> None:
    uri = host.route("/slow.json", Reply(200, b"{}", delay_s=1.0))
    assert counted(service, uri) == {"timeout": 2}  # retried once at once


def test_a_body_over_the_limit_is_too_large(service: MetadataService, host: ScriptedServer) -> None:
    uri = host.route("/big.json", Reply(200, b" " * 5000))
    assert counted(service, uri) == {"too_large": 1}


def test_a_private_address_is_blocked_and_never_asked(
    fetch_settings: Settings, sessions: sessionmaker[Session], host: ScriptedServer
) -> None:
    guarded = service_for(
        replace(fetch_settings, metadata_fetch_allow_private_networks=False), sessions
    )
    uri = host.route("/private.json", Reply(200, b"{}"))
    try:
        assert counted(guarded, uri) == {"blocked": 1}
    finally:
        guarded.fetcher.close()
    assert host.hits["/private.json"] == 0


def test_a_429_is_rate_limited(service: MetadataService, host: ScriptedServer) -> None:
    uri = host.route("/busy.json", Reply(429, b"slow down", {"Retry-After": "60"}))
    assert counted(service, uri) == {"rate_limited": 1}


def test_an_inline_document_is_counted_as_a_data_uri(
    service: MetadataService, sessions: sessionmaker[Session]
) -> None:
    before = counts("data_uri")
    stored(sessions, service, 'data:application/json,{"name":"Inline"}')
    after = counts("data_uri")
    assert (after["ok"], after["unchanged"]) == (before["ok"] + 1, before["unchanged"] + 1)
