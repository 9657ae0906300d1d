"""The history routes (docs/fetch-history.md#routes): a token's job and newest fetch attempts,
its 404s and 400s as the detail routes give them, under both prefixes; every response is
checked against the OpenAPI document by the test client."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token
from support.chain_run import chain_run
from support.http_server import Reply, ScriptedServer

from devnet.scenario import nft_collection
from shared.db import session_scope
from shared.indexing.fetch_history import write_attempts
from shared.models import (
    Job,
    JobStatus,
    RateLimitedHost,
    Sip,
    Token,
    TokenUpdateMode,
    UpdateNotification,
)

V1 = "/metadata/v1"
KIND_OF = {Sip.SIP_009: "nft", Sip.SIP_013: "sft", Sip.SIP_010: "ft"}


def history_path(principal: str, sip: Sip, number: int, prefix: str = V1) -> str:
    kind = KIND_OF[sip]
    token = "" if sip == Sip.SIP_010 else f"/{number}"
    return f"{prefix}/{kind}/{principal}{token}/history"


def stored(db: sessionmaker[Session], sip: Sip = Sip.SIP_009, **fields: Any) -> tuple[str, Token]:
    with db.begin() as s:
        contract = add_contract(s, sip=sip)
        token = add_token(s, contract, 1 if sip == Sip.SIP_010 else 5, **fields)
    return contract.principal, token


def attempt(token_id: int, **fields: Any) -> dict[str, Any]:
    row = {
        "token_id": token_id,
        "at": datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC).isoformat(),
        "kind": "metadata",
        "trigger": "import",
        "url": "https://meta.example.test/1.json",
        "http_status": 200,
        "bytes": 42,
        "duration_ms": 7,
        "outcome": "ok",
        "reason_code": None,
    }
    return {**row, **fields}


def test_a_host_answering_500_shows_every_attempt_and_when_the_next_is_due(
    client, settings, sessions, stacks_api_database_url
) -> None:
    fast = replace(settings, metadata_fetch_timeout_ms=400)
    with ScriptedServer() as host:
        uri = host.route("/down.json", Reply(500, b"down"))
        nft = nft_collection("down", 1, 2, token_uri=uri)
        with chain_run(fast, sessions, stacks_api_database_url, nft) as run:
            run.run_now(run.job_id(nft))
    response = client.get(f"{V1}/nft/{nft.contract_id}/1/history")
    assert response.status_code == 200
    body = response.json
    assert [a["trigger"] for a in body["attempts"]] == ["retry", "import"]
    for attempt_ in body["attempts"]:
        assert attempt_["kind"] == "metadata"
        assert (attempt_["outcome"], attempt_["http_status"], attempt_["reason_code"]) == (
            "http_error",
            500,
            107,
        )
        assert attempt_["url"] == uri
    newest, oldest = (datetime.fromisoformat(a["at"]) for a in body["attempts"])
    assert newest >= oldest
    with session_scope(sessions) as s:
        job = s.scalars(select(Job).where(Job.id == run.job_id(nft))).one()
    assert body["job"] == {
        "status": "pending",
        "retry_count": 2,
        "retry_after": job.retry_after.isoformat(),
        "frozen": False,
        "update_mode": "standard",
        "next_refresh_at": None,
        "host_rate_limited_until": None,
    }
    assert datetime.fromisoformat(body["job"]["retry_after"]) > datetime.now(UTC)


@pytest.mark.parametrize("sip", [Sip.SIP_009, Sip.SIP_013, Sip.SIP_010])
def test_each_kind_answers_its_attempts_newest_first(client, db, sip: Sip) -> None:
    principal, token = stored(db, sip)
    with db.begin() as s:
        write_attempts(s, [attempt(token.id, bytes=1)])
        write_attempts(s, [attempt(token.id, kind="image", outcome="parse_error", reason_code=106)])
    response = client.get(history_path(principal, sip, token.token_number))
    assert response.status_code == 200
    assert [(a["kind"], a["bytes"]) for a in response.json["attempts"]] == [
        ("image", 42),
        ("metadata", 1),
    ]
    assert response.json["attempts"][1] == {
        "at": "2026-05-06T07:08:09+00:00",
        "kind": "metadata",
        "trigger": "import",
        "url": "https://meta.example.test/1.json",
        "http_status": 200,
        "bytes": 1,
        "duration_ms": 7,
        "outcome": "ok",
        "reason_code": None,
    }
    assert response.json["job"]["status"] == "done"


def test_the_unversioned_prefix_answers_the_same(client, db) -> None:
    principal, token = stored(db)
    with db.begin() as s:
        write_attempts(s, [attempt(token.id)])
    versioned = client.get(history_path(principal, Sip.SIP_009, 5))
    unversioned = client.get(history_path(principal, Sip.SIP_009, 5, prefix="/metadata"))
    assert unversioned.status_code == 200
    assert unversioned.json == versioned.json


def test_an_invalid_token_still_answers_its_history(client, db) -> None:
    principal, _token = stored(db, job_status=JobStatus.INVALID, invalid_reason=107)
    assert client.get(f"{V1}/nft/{principal}/5").status_code == 422
    response = client.get(history_path(principal, Sip.SIP_009, 5))
    assert response.status_code == 200
    assert response.json["job"]["status"] == "invalid"


def test_a_never_fetched_token_has_no_attempts(client, db) -> None:
    principal, _token = stored(db, job_status=JobStatus.PENDING, processed=False)
    response = client.get(history_path(principal, Sip.SIP_009, 5))
    assert response.status_code == 200
    assert response.json["attempts"] == []
    assert response.json["job"]["status"] == "pending"


def notify(db: sessionmaker[Session], token: Token, mode: TokenUpdateMode, height: int, ttl=None):
    with db.begin() as s:
        s.add(
            UpdateNotification(
                token_id=token.id,
                update_mode=mode,
                ttl=ttl,
                block_height=height,
                index_block_hash=f"0x{height:064x}",
                tx_id=f"0x{height:064x}",
                tx_index=0,
                event_index=0,
            )
        )


def test_a_frozen_token_says_so(client, db) -> None:
    principal, token = stored(db)
    notify(db, token, TokenUpdateMode.DYNAMIC, 10)
    notify(db, token, TokenUpdateMode.FROZEN, 11)
    job = client.get(history_path(principal, Sip.SIP_009, 5)).json["job"]
    assert (job["frozen"], job["update_mode"], job["next_refresh_at"]) == (True, "frozen", None)


def test_a_dynamic_token_says_when_it_is_refreshed_next(client, db) -> None:
    principal, token = stored(db)
    notify(db, token, TokenUpdateMode.DYNAMIC, 10, ttl=600)
    with db.begin() as s:
        updated_at = s.scalars(select(Token.updated_at).where(Token.id == token.id)).one()
    job = client.get(history_path(principal, Sip.SIP_009, 5)).json["job"]
    assert (job["frozen"], job["update_mode"]) == (False, "dynamic")
    assert job["next_refresh_at"] == (updated_at + timedelta(seconds=600)).isoformat()


def test_a_rate_limited_metadata_host_says_until_when(client, db) -> None:
    principal, token = stored(db)
    until = datetime.now(UTC) + timedelta(minutes=5)
    with db.begin() as s:
        write_attempts(s, [attempt(token.id, url="https://Busy.example.test:8443/x.json")])
        s.execute(insert(RateLimitedHost).values(hostname="busy.example.test", retry_after=until))
    job = client.get(history_path(principal, Sip.SIP_009, 5)).json["job"]
    assert datetime.fromisoformat(job["host_rate_limited_until"]) == until


@pytest.mark.parametrize("sip", [Sip.SIP_009, Sip.SIP_013, Sip.SIP_010])
def test_unknown_contracts_and_tokens_are_the_detail_routes_404s(client, db, sip: Sip) -> None:
    principal, _token = stored(db, sip)
    unknown = f"{principal}-gone"
    for path in (
        history_path(unknown, sip, 5),
        *([history_path(principal, sip, 6)] if sip != Sip.SIP_010 else []),
    ):
        detail = client.get(path.removesuffix("/history"))
        response = client.get(path)
        assert detail.status_code == 404
        assert (response.status_code, response.json) == (404, detail.json)


@pytest.mark.parametrize(
    "path", ["/nft/not-a-principal/1", "/nft/SP000000000000000000002Q6VF78.c/abc", "/ft/x.y"]
)
def test_malformed_paths_are_the_detail_routes_400s(client, path: str) -> None:
    detail = client.get(V1 + path)
    response = client.get(V1 + path + "/history")
    assert detail.status_code == 400
    assert (response.status_code, response.json) == (400, detail.json)


def test_the_openapi_document_declares_the_routes(client) -> None:
    document = client.get(f"{V1}/openapi.json").json
    paths = document["paths"]
    for path in (
        "/metadata/v1/nft/{principal}/{token_id}/history",
        "/metadata/v1/sft/{principal}/{token_id}/history",
        "/metadata/v1/ft/{principal}/history",
    ):
        operation = paths[path]["get"]
        assert set(operation["responses"]) >= {"200", "400", "404"}, path
    schemas = json.dumps(document["components"]["schemas"])
    assert "Token Fetch History" in schemas
