"""Self-service refreshes (docs/marketplace-api.md#refresh) against the real Postgres and the
run's Redis DB: the job pended again and sent to the refresh queue after the commit, the
token's cooldown, the client's hourly quota, trusted proxies, frozen and unknown tokens."""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from integration.api.conftest import CheckedClient
from integration.api.openapi_check import ResponseChecker
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from support.broker import emptied
from support.builders import add_contract, add_token, new_principal
from support.processes import wait_until

from api.app import create_app
from api.db import close_db
from api.resources.refresh import REFRESH
from shared.config import Settings
from shared.models import Job, JobStatus, Sip, Token, TokenUpdateMode, UpdateNotification
from shared.queues import REFRESH_QUEUE, TOKENS_QUEUE, WORKER_QUEUES

V1 = "/metadata/v1"
KIND_OF = {Sip.SIP_009: "nft", Sip.SIP_013: "sft", Sip.SIP_010: "ft"}
LONG_AGO = timedelta(hours=2)


def unique_address() -> str:
    """A client address of this test's own: the run's Redis DB keeps every quota for an hour."""
    return str(ipaddress.IPv4Address(0x0A000000 | secrets.randbits(24)))  # 10.x.y.z


def make_client(app: Flask, checker: ResponseChecker, address: str) -> CheckedClient:
    app.test_client_class = CheckedClient
    client = app.test_client()
    assert isinstance(client, CheckedClient)
    client.checker = checker
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def make_app(openapi_checker: ResponseChecker) -> Iterator[Any]:
    """Apps on given settings; their connections closed after the test."""
    apps: list[Flask] = []

    def make(settings: Settings) -> Flask:
        app = create_app(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions[REFRESH].close()
        close_db(app)


@pytest.fixture
def api(settings: Settings, make_app: Any, openapi_checker: ResponseChecker) -> CheckedClient:
    return make_client(make_app(settings), openapi_checker, unique_address())


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    with emptied(redis_url, *WORKER_QUEUES) as client:
        yield client


def queued_jobs(broker: redis.Redis, queue: str) -> list[int]:
    """The job ids of the token messages waiting on `queue`, oldest first."""
    found: list[int] = []
    for raw in reversed(broker.lrange(queue, 0, -1)):  # kombu pushes on the left
        (job_ids,), _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        found += job_ids if isinstance(job_ids, list) else [job_ids]
    return found


def refresh_path(token: Token, principal: str, sip: Sip, prefix: str = V1) -> str:
    kind = KIND_OF[sip]
    number = "" if sip == Sip.SIP_010 else f"/{token.token_number}"
    return f"{prefix}/{kind}/{principal}{number}/refresh"


def fetched_long_ago(session: Session, token: Token) -> None:
    session.execute(
        update(Token).where(Token.id == token.id).values(updated_at=func.now() - LONG_AGO)
    )


def job_of(db: sessionmaker[Session], token: Token) -> Job:
    with db.begin() as s:
        return s.scalars(select(Job).where(Job.token_id == token.id)).one()


def requested_at(db: sessionmaker[Session], token: Token) -> datetime | None:
    with db.begin() as s:
        return s.scalar(select(Token.refresh_requested_at).where(Token.id == token.id))


def stored_token(
    db: sessionmaker[Session], sip: Sip = Sip.SIP_009, *, fetched: bool = True, **fields: Any
) -> tuple[str, Token]:
    """A token of a new contract; `fetched`: processed long before any cooldown."""
    with db.begin() as s:
        contract = add_contract(s, sip=sip)
        number = 1 if sip == Sip.SIP_010 else 5
        token = add_token(s, contract, number, processed=fetched, **fields)
        if fetched:
            fetched_long_ago(s, token)
    return contract.principal, token


def assert_too_many(response: Any, most_s: int) -> int:
    assert response.status_code == 429
    assert response.json["error"] == "Too many refresh requests"
    assert response.json["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= most_s
    return retry_after


# --- 202 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sip", [Sip.SIP_009, Sip.SIP_013, Sip.SIP_010])
@pytest.mark.parametrize("prefix", [V1, "/metadata"])
def test_a_refresh_pends_the_job_and_sends_it_to_the_refresh_queue(
    api, db, broker, sip: Sip, prefix: str
) -> None:
    principal, token = stored_token(db, sip)
    response = api.post(refresh_path(token, principal, sip, prefix))
    assert response.status_code == 202
    assert response.json == {"status": "queued"}
    job = job_of(db, token)
    assert job.status == JobStatus.QUEUED  # pending again, then handed to the workers at once
    assert queued_jobs(broker, REFRESH_QUEUE) == [job.id]
    assert requested_at(db, token) is not None


def test_a_failed_first_fetch_is_sent_to_the_refresh_queue_too(api, db, broker) -> None:
    """A holder's request never jumps ahead of tokens that were never fetched."""
    principal, token = stored_token(db, job_status=JobStatus.FAILED, fetched=False)
    assert api.post(refresh_path(token, principal, Sip.SIP_009)).status_code == 202
    assert queued_jobs(broker, REFRESH_QUEUE) == [job_of(db, token).id]
    assert broker.llen(TOKENS_QUEUE) == 0


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.QUEUED])
def test_a_job_waiting_to_run_is_left_alone_and_the_cooldown_taken(
    api, db, broker, status: JobStatus
) -> None:
    principal, token = stored_token(db, job_status=status, fetched=False)
    path = refresh_path(token, principal, Sip.SIP_009)
    assert api.post(path).status_code == 202  # it is fetched anyway
    assert job_of(db, token).status == status
    assert broker.llen(REFRESH_QUEUE) == 0
    assert requested_at(db, token) is not None
    assert_too_many(api.post(path), most_s=600)


def test_a_running_job_is_fetched_again_after_it(api, db, broker) -> None:
    principal, token = stored_token(db, job_status=JobStatus.QUEUED)
    lease_end = datetime.now().astimezone() + timedelta(seconds=30)
    with db.begin() as s:
        s.execute(update(Job).where(Job.token_id == token.id).values(locked_until=lease_end))
    assert api.post(refresh_path(token, principal, Sip.SIP_009)).status_code == 202
    job = job_of(db, token)
    assert job.status == JobStatus.PENDING
    assert job.retry_after == lease_end  # due when the running fetch's lease ends
    assert broker.llen(REFRESH_QUEUE) == 0  # beat's dispatcher sends it then


def test_a_dynamic_token_is_refreshed(api, db, broker) -> None:
    principal, token = stored_token(db)
    notify(db, token, TokenUpdateMode.DYNAMIC)
    assert api.post(refresh_path(token, principal, Sip.SIP_009)).status_code == 202


# --- 429: the token's cooldown ---------------------------------------------------------------


def test_a_second_request_within_the_cooldown_is_429(api, db, broker) -> None:
    principal, token = stored_token(db)
    path = refresh_path(token, principal, Sip.SIP_009)
    assert api.post(path).status_code == 202
    asked = requested_at(db, token)
    retry_after = assert_too_many(api.post(path), most_s=600)
    assert retry_after >= 590
    assert requested_at(db, token) == asked  # a refused request moves nothing
    assert len(queued_jobs(broker, REFRESH_QUEUE)) == 1


def test_a_token_fetched_within_the_cooldown_is_429(api, db, broker) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, 3)
        ago = timedelta(seconds=100)
        s.execute(update(Token).where(Token.id == token.id).values(updated_at=func.now() - ago))
    response = api.post(refresh_path(token, contract.principal, Sip.SIP_009))
    assert assert_too_many(response, most_s=500) >= 490
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert job_of(db, token).status == JobStatus.DONE
    assert requested_at(db, token) is None


def test_the_cooldown_is_the_setting(settings, make_app, openapi_checker, db, broker) -> None:
    app = make_app(replace(settings, refresh_cooldown_s=0))
    client = make_client(app, openapi_checker, unique_address())
    principal, token = stored_token(db)
    path = refresh_path(token, principal, Sip.SIP_009)
    assert [client.post(path).status_code for _ in range(2)] == [202, 202]


def test_of_two_requests_at_once_one_gets_through(
    settings, make_app, openapi_checker, db, broker
) -> None:
    """The cooldown is one conditional UPDATE: both requests wait on the token's row (held
    here until both are waiting), and whichever gets it second finds the cooldown taken."""
    app = make_app(settings)
    principal, token = stored_token(db)
    path = refresh_path(token, principal, Sip.SIP_009)
    clients = [make_client(app, openapi_checker, unique_address()) for _ in range(2)]
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda c=client: statuses.append(c.post(path).status_code))
        for client in clients
    ]
    with db.begin() as holder:
        holder.execute(select(Token.id).where(Token.id == token.id).with_for_update())
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting_on_locks(db) == 2, 10, "both requests to wait on the row")
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202, 429]
    assert queued_jobs(broker, REFRESH_QUEUE) == [job_of(db, token).id]


def waiting_on_locks(db: sessionmaker[Session]) -> int:
    """The API's connections to this database waiting for a lock."""
    with db.begin() as s:
        return int(
            s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'tm-api' AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


# --- 429: the client's quota -----------------------------------------------------------------


def test_a_client_past_its_hourly_limit_is_429(
    settings, make_app, openapi_checker, db, broker
) -> None:
    app = make_app(replace(settings, refresh_client_limit=2))
    client = make_client(app, openapi_checker, unique_address())
    tokens = [stored_token(db) for _ in range(3)]
    paths = [refresh_path(token, principal, Sip.SIP_009) for principal, token in tokens]
    assert [client.post(path).status_code for path in paths[:2]] == [202, 202]
    response = client.post(paths[2])
    assert assert_too_many(response, most_s=3600) >= 3590
    assert "More than 2 refresh requests" in response.json["message"]
    assert requested_at(db, tokens[2][1]) is None  # refused before the database
    other = make_client(app, openapi_checker, unique_address())
    assert other.post(paths[2]).status_code == 202


def test_refused_requests_count_against_the_limit(
    settings, make_app, openapi_checker, db, broker
) -> None:
    app = make_app(replace(settings, refresh_client_limit=2))
    client = make_client(app, openapi_checker, unique_address())
    unknown = f"{V1}/nft/{new_principal()}/1/refresh"
    assert [client.post(unknown).status_code for _ in range(2)] == [404, 404]
    principal, token = stored_token(db)
    assert_too_many(client.post(refresh_path(token, principal, Sip.SIP_009)), most_s=3600)


def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(
    settings, make_app, openapi_checker, db, broker
) -> None:
    proxy = unique_address()
    limited = replace(
        settings, refresh_client_limit=1, refresh_cooldown_s=0, trusted_proxies=(proxy,)
    )
    app = make_app(limited)
    principal, token = stored_token(db)
    path = refresh_path(token, principal, Sip.SIP_009)
    via_proxy = make_client(app, openapi_checker, proxy)
    first, second = unique_address(), unique_address()
    # Two clients behind the proxy: a quota each, whatever the client wrote to the left.
    assert via_proxy.post(path, headers={"X-Forwarded-For": f"1.2.3.4, {first}"}).status_code == 202
    assert via_proxy.post(path, headers={"X-Forwarded-For": second}).status_code == 202
    assert_too_many(via_proxy.post(path, headers={"X-Forwarded-For": first}), most_s=3600)
    # Not from the proxy: the header is the client's own claim and is ignored.
    direct = make_client(app, openapi_checker, unique_address())
    assert direct.post(path, headers={"X-Forwarded-For": unique_address()}).status_code == 202
    response = direct.post(path, headers={"X-Forwarded-For": unique_address()})
    assert_too_many(response, most_s=3600)


def test_the_api_answers_when_redis_is_down(
    settings, make_app, openapi_checker, db, caplog
) -> None:
    """Fail open: the per-token cooldown in Postgres still holds; the job stays queued in
    Postgres for beat's dispatcher to send again."""
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(replace(settings, redis_url=f"redis://127.0.0.1:{port}/0"))
    client = make_client(app, openapi_checker, unique_address())
    principal, token = stored_token(db)
    path = refresh_path(token, principal, Sip.SIP_009)
    with caplog.at_level(logging.WARNING):
        assert client.post(path).status_code == 202
    assert "refresh quota not counted" in caplog.text
    assert "could not send 1 refresh messages" in caplog.text
    assert job_of(db, token).status == JobStatus.QUEUED
    assert_too_many(client.post(path), most_s=600)


# --- 409, 404, 400 ---------------------------------------------------------------------------


def notify(db: sessionmaker[Session], token: Token, mode: TokenUpdateMode, height: int = 10):
    with db.begin() as s:
        s.add(
            UpdateNotification(
                token_id=token.id,
                update_mode=mode,
                block_height=height,
                index_block_hash=f"0x{height:064x}",
                tx_id=f"0x{height:064x}",
                tx_index=0,
                event_index=0,
            )
        )


def test_a_frozen_token_is_409(api, db, broker) -> None:
    principal, token = stored_token(db)
    notify(db, token, TokenUpdateMode.DYNAMIC, height=10)
    notify(db, token, TokenUpdateMode.FROZEN, height=11)
    response = api.post(refresh_path(token, principal, Sip.SIP_009))
    assert response.status_code == 409
    assert response.json["error"] == "Token is frozen"
    assert response.json["message"]
    assert job_of(db, token).status == JobStatus.DONE
    assert requested_at(db, token) is None


def test_a_token_frozen_then_notified_again_stays_frozen_by_its_latest_notification(
    api, db, broker
) -> None:
    principal, token = stored_token(db)
    notify(db, token, TokenUpdateMode.FROZEN, height=10)
    notify(db, token, TokenUpdateMode.STANDARD, height=9)  # an older one, imported late
    assert api.post(refresh_path(token, principal, Sip.SIP_009)).status_code == 409


def test_unknown_contracts_and_tokens_are_404(api, db, broker) -> None:
    principal, token = stored_token(db)
    not_found = {
        f"{V1}/nft/{new_principal()}/1/refresh": "Contract not found",
        f"{V1}/ft/{new_principal()}/refresh": "Contract not found",
        f"{V1}/sft/{principal}/5/refresh": "Contract not found",  # an NFT contract
        f"{V1}/ft/{principal}/refresh": "Contract not found",
        f"{V1}/nft/{principal}/6/refresh": "Token not found",
        f"{V1}/nft/{principal}/-5/refresh": "Token not found",
    }
    for path, error in not_found.items():
        response = api.post(path)
        assert (response.status_code, response.json) == (404, {"error": error}), path
    assert requested_at(db, token) is None


def test_bad_path_parameters_are_400_naming_the_field(api) -> None:
    principal = new_principal()
    bad = {
        f"{V1}/nft/not-a-principal/1/refresh": "params/principal must match pattern",
        f"{V1}/ft/{principal.lower()}/refresh": "params/principal must match pattern",
        f"{V1}/nft/{principal}/abc/refresh": "params/token_id must be integer",
        f"{V1}/sft/{principal}/1.5/refresh": "params/token_id must be integer",
    }
    for path, message in bad.items():
        response = api.post(path)
        assert response.status_code == 400, path
        assert response.json["message"].startswith(message), (path, response.json)


def test_a_get_on_a_refresh_route_is_a_404(api) -> None:
    response = api.get(f"{V1}/nft/{new_principal()}/1/refresh")
    assert response.status_code == 404
    assert response.json["error"] == "Not Found"


def test_the_refresh_routes_are_documented_under_marketplace(api) -> None:
    paths = api.get(f"{V1}/openapi.json").json["paths"]
    for path in (
        f"{V1}/nft/{{principal}}/{{token_id}}/refresh",
        f"{V1}/sft/{{principal}}/{{token_id}}/refresh",
        f"{V1}/ft/{{principal}}/refresh",
    ):
        operation = paths[path]["post"]
        assert operation["tags"] == ["Marketplace"]
        assert {"202", "400", "404", "409", "429"} <= operation["responses"].keys()
        assert "Retry-After" in operation["responses"]["429"]["headers"]
