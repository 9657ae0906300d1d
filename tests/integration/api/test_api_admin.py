"""Admin routes (docs/reference-differences.md#admin-routes) behind ADMIN_API_TOKEN,
against the real Postgres, a Stacks API database the tests write and the run's Redis DB."""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis
from flask import Flask
from integration.api.conftest import CheckedClient
from integration.api.openapi_check import ResponseChecker
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from support.broker import emptied
from support.builders import add_contract, add_metadata, add_token, new_principal

from api.app import create_app
from api.db import close_db
from api.resources.admin import ADMIN
from devnet import chain_db
from devnet.builders import fungible_token, nft_collection, plain_contract
from devnet.chain_writer import Block, ChainWriter
from devnet.scenario import Contract
from shared.config import Settings
from shared.db import session_scope
from shared.host_slot_keys import LIMIT_PREFIX
from shared.indexing.host_limits import AdaptiveLimits
from shared.models import ImageJob, Job, JobStatus, RateLimitedHost, Sip, SmartContract, Token
from shared.queues import (
    CONTRACTS_QUEUE,
    PROCESS_CONTRACT_TASK,
    PROCESS_TOKEN_TASK,
    PROCESS_TOKENS_TASK,
    REFRESH_QUEUE,
    TOKENS_QUEUE,
    WORKER_QUEUES,
)

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREFIX = "/metadata/v1/admin"
CONTRACT_TASKS, TOKEN_TASKS = {PROCESS_CONTRACT_TASK}, {PROCESS_TOKEN_TASK, PROCESS_TOKENS_TASK}
PRINCIPAL = "SP2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS.hello"
ROUTES = [
    ("POST", "/refresh-token", {"contractId": PRINCIPAL}),
    ("POST", "/retry-failed", {}),
    ("POST", "/cache-images", {"contractId": PRINCIPAL}),
    ("POST", "/import-contract", {"contractId": PRINCIPAL}),
    ("GET", "/progress", None),
    ("GET", f"/progress/{PRINCIPAL}", None),
    ("GET", "/dashboard", None),
    ("GET", "/hosts", None),
]


def make_client(settings: Settings, checker: ResponseChecker) -> Iterator[CheckedClient]:
    app: Flask = create_app(settings)
    app.test_client_class = CheckedClient
    client = app.test_client()
    assert isinstance(client, CheckedClient)
    client.checker = checker
    yield client
    if ADMIN in app.extensions:
        app.extensions[ADMIN].close()
    close_db(app)


@pytest.fixture
def admin(settings: Settings, openapi_checker: ResponseChecker) -> Iterator[CheckedClient]:
    yield from make_client(replace(settings, admin_api_token=TOKEN), openapi_checker)


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    """The run's Redis DB, its job queues emptied before and after."""
    with emptied(redis_url, *WORKER_QUEUES) as client:
        yield client


def queued_jobs(broker: redis.Redis, queue: str) -> list[int]:
    """The job ids of the messages waiting on `queue`, oldest first (a token message may
    carry one job or a batch)."""
    tasks = CONTRACT_TASKS if queue == CONTRACTS_QUEUE else TOKEN_TASKS
    found: list[int] = []
    for raw in reversed(broker.lrange(queue, 0, -1)):  # kombu pushes on the left
        message = json.loads(raw)
        assert message["headers"]["task"] in tasks
        (job_ids,), _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found += job_ids if isinstance(job_ids, list) else [job_ids]
    return found


def post(client: CheckedClient, route: str, body: Any = None, **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", AUTH)
    return client.post(PREFIX + route, json=body, headers=headers, **kwargs)


def job_of(db: sessionmaker[Session], token: Token) -> Job:
    with db.begin() as s:
        return s.scalars(select(Job).where(Job.token_id == token.id)).one()


def assert_empty_200(response: Any) -> None:
    assert response.status_code == 200
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers


# --- enabled only with the token -------------------------------------------------------------


def test_admin_routes_are_404_when_no_admin_token_is_set(client: CheckedClient) -> None:
    for prefix in ("/metadata/v1/admin", "/metadata/admin"):
        for method, route, body in ROUTES:
            response = client.open(prefix + route, method=method, json=body, headers=AUTH)
            assert response.status_code == 404, route
            assert response.json["error"] == "Not Found"


def test_admin_routes_stay_out_of_the_openapi_document(admin: CheckedClient) -> None:
    paths = admin.get("/metadata/v1/openapi.json").json["paths"]
    assert paths
    assert not [path for path in paths if "admin" in path]


# --- authentication ------------------------------------------------------------------------


REFUSED_HEADERS = {
    "missing header": {},
    "basic scheme": {"Authorization": "Basic " + base64.b64encode(b"admin:x").decode()},
    "token without scheme": {"Authorization": TOKEN},
    "empty bearer": {"Authorization": "Bearer "},
    "wrong token": {"Authorization": "Bearer not-the-token"},
    "token prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "non-ascii token": {"Authorization": "Bearer t\u00f6ken"},
}


@pytest.mark.parametrize("case", sorted(REFUSED_HEADERS))
def test_a_request_without_the_right_bearer_token_is_401_and_logged(
    admin: CheckedClient, caplog: Any, case: str
) -> None:
    for method, route, body in ROUTES:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="api.resources.admin"):
            response = admin.open(
                PREFIX + route, method=method, json=body, headers=REFUSED_HEADERS[case]
            )
        assert response.status_code == 401, route
        assert response.json == {"error": "Unauthorized"}
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.headers["Cache-Control"] == "no-store"
        (record,) = [r for r in caplog.records if r.name == "api.resources.admin"]
        assert record.levelno == logging.WARNING
        line = record.getMessage()
        assert f"{method} {PREFIX}{route} from 127.0.0.1" in line
        assert TOKEN[:8] not in line
        assert "not-the-token" not in line


def test_a_refused_request_changes_nothing(admin: CheckedClient, db, broker) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, 1, job_status=JobStatus.FAILED)
    wrong = {"Authorization": "Bearer nope"}
    body = {"contractId": contract.principal}
    assert post(admin, "/refresh-token", body, headers=wrong).status_code == 401
    assert post(admin, "/retry-failed", headers=wrong).status_code == 401
    assert job_of(db, token).status == JobStatus.FAILED
    assert broker.llen(REFRESH_QUEUE) == 0


def test_the_scheme_is_case_insensitive_and_both_prefixes_answer(admin: CheckedClient) -> None:
    lower = {"Authorization": f"bearer {TOKEN}"}
    assert admin.post("/metadata/admin/retry-failed", headers=lower).status_code == 200
    assert admin.post(PREFIX + "/retry-failed", headers=AUTH).status_code == 200


# --- refresh-token -------------------------------------------------------------------------


@pytest.fixture
def collection(db) -> tuple[str, list[Token]]:
    """A contract with tokens 1 and 2, both processed, their jobs done."""
    with db.begin() as s:
        contract = add_contract(s)
        tokens = [add_token(s, contract, n) for n in (1, 2)]
    return contract.principal, tokens


def test_refresh_token_refreshes_a_single_token(admin, db, broker, collection) -> None:
    principal, (first, second) = collection
    response = post(admin, "/refresh-token", {"contractId": principal, "tokenIds": [1]})
    assert_empty_200(response)
    assert job_of(db, second).status == JobStatus.DONE
    job = job_of(db, first)
    assert job.status == JobStatus.QUEUED  # pending, then handed to the workers at once
    assert queued_jobs(broker, REFRESH_QUEUE) == [job.id]


def test_refresh_token_refreshes_all_tokens(admin, db, broker, collection) -> None:
    principal, tokens = collection
    assert_empty_200(post(admin, "/refresh-token", {"contractId": principal}))
    jobs = [job_of(db, token) for token in tokens]
    assert [job.status for job in jobs] == [JobStatus.QUEUED, JobStatus.QUEUED]
    assert queued_jobs(broker, REFRESH_QUEUE) == [job.id for job in jobs]


def test_refresh_token_sends_never_fetched_tokens_to_the_tokens_queue(admin, db, broker) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, 7, job_status=JobStatus.FAILED, processed=False)
    body = {"contractId": contract.principal, "tokenIds": [7, 8]}  # 8 does not exist
    assert_empty_200(post(admin, "/refresh-token", body))
    job = job_of(db, token)
    assert queued_jobs(broker, TOKENS_QUEUE) == [job.id]
    assert broker.llen(REFRESH_QUEUE) == 0


def test_refresh_token_leaves_waiting_jobs_alone(admin, db, broker) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        token = add_token(s, contract, 1, job_status=JobStatus.PENDING)
    assert_empty_200(post(admin, "/refresh-token", {"contractId": contract.principal}))
    assert job_of(db, token).status == JobStatus.PENDING  # the dispatcher has it already
    assert broker.llen(REFRESH_QUEUE) == 0


def test_refresh_token_answers_even_when_the_broker_is_down(
    settings: Settings, openapi_checker, db, collection, caplog
) -> None:
    """The jobs stay queued in Postgres; beat's dispatcher re-sends lost messages."""
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = replace(settings, admin_api_token=TOKEN, redis_url=f"redis://127.0.0.1:{port}/0")
    principal, (first, _second) = collection
    with caplog.at_level(logging.ERROR, logger="api.resources.admin"):
        for client in make_client(down, openapi_checker):
            body = {"contractId": principal, "tokenIds": [1]}
            assert_empty_200(post(client, "/refresh-token", body))
    assert job_of(db, first).status == JobStatus.QUEUED
    assert "could not send 1 job messages" in caplog.text


def test_refresh_token_fails_on_non_existing_contract(admin, broker) -> None:
    response = post(admin, "/refresh-token", {"contractId": new_principal()})
    assert response.status_code == 422
    assert response.json == {"error": "Contract not found"}


def test_refresh_token_accepts_token_numbers_up_to_uint128(admin, db, broker) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_013)
        token = add_token(s, contract, 2**128 - 1)
    body = {"contractId": contract.principal, "tokenIds": [0, 2**128 - 1]}
    assert_empty_200(post(admin, "/refresh-token", body))
    assert job_of(db, token).status == JobStatus.QUEUED


# --- retry-failed --------------------------------------------------------------------------


def test_retry_failed_retries_failed_and_invalid_jobs(admin, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, job_status=JobStatus.INVALID, invalid_reason=109)
        failed = add_token(s, contract, 1, job_status=JobStatus.FAILED)
        invalid = add_token(s, contract, 2, job_status=JobStatus.INVALID, invalid_reason=105)
        done = add_token(s, contract, 3)
        s.execute(
            update(Job)
            .where(Job.token_id.in_([failed.id, invalid.id]))
            .values(retry_count=4, retry_after=func.now())
        )
    assert_empty_200(post(admin, "/retry-failed"))
    with db.begin() as s:
        jobs = {(j.token_id, j.smart_contract_id): j for j in s.scalars(select(Job))}
    retried = [jobs[(failed.id, None)], jobs[(invalid.id, None)], jobs[(None, contract.id)]]
    assert [(j.status, j.retry_count, j.retry_after) for j in retried] == [
        (JobStatus.PENDING, 0, None)
    ] * 3
    assert jobs[(done.id, None)].status == JobStatus.DONE


def test_retry_failed_ignores_its_body(admin) -> None:
    assert_empty_200(admin.post(PREFIX + "/retry-failed", data="anything", headers=AUTH))


# --- cache-images --------------------------------------------------------------------------


def test_cache_images_rejects_when_image_cache_is_disabled(admin, db) -> None:
    with db.begin() as s:
        principal = add_contract(s).principal
    response = post(admin, "/cache-images", {"contractId": principal})
    assert response.status_code == 422
    assert response.json == {"error": "Image cache processor is not enabled"}


@pytest.fixture
def images_admin(settings: Settings, openapi_checker) -> Iterator[CheckedClient]:
    enabled = replace(settings, admin_api_token=TOKEN, image_cache_processor_enabled=True)
    yield from make_client(enabled, openapi_checker)


def test_cache_images_reprocesses_token_images(images_admin, db) -> None:
    with db.begin() as s:
        contract = add_contract(s)
        tokens = [add_token(s, contract, n) for n in (1, 2)]
        metadata = [add_metadata(s, t, image=f"http://m.io/{t.token_number}.png") for t in tokens]
    body = {"contractId": contract.principal, "tokenIds": [1]}
    assert_empty_200(post(images_admin, "/cache-images", body))
    with db.begin() as s:
        jobs = s.execute(select(ImageJob.metadata_id, ImageJob.status)).all()
    assert jobs == [(metadata[0], JobStatus.PENDING)]  # due now: the dispatcher sends it


def test_cache_images_fails_on_non_existing_contract(images_admin) -> None:
    response = post(images_admin, "/cache-images", {"contractId": new_principal()})
    assert response.status_code == 422
    assert response.json == {"error": "Contract not found"}


# --- import-contract -----------------------------------------------------------------------


@pytest.fixture
def sba(stacks_api_database_url: str) -> Iterator[ChainWriter]:
    """A Stacks API database the test writes (autocommit), with one block."""
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        chain_db.create_schema(conn)
        writer = ChainWriter(conn)
        writer.set_tip(writer.append_block())
        yield writer


@pytest.fixture
def importer(
    settings: Settings, stacks_api_database_url: str, sba: ChainWriter, openapi_checker
) -> Iterator[CheckedClient]:
    configured = replace(
        settings, admin_api_token=TOKEN, stacks_api_database_url=stacks_api_database_url
    )
    yield from make_client(configured, openapi_checker)


def deploy(sba: ChainWriter, contract: Contract) -> Block:
    block = sba.append_block()
    sba.deploy_contract(contract, block)
    sba.set_tip(block)
    return block


def import_contract(client: CheckedClient, contract_id: str) -> Any:
    return post(client, "/import-contract", {"contractId": contract_id})


def sba_execute(sba: ChainWriter, statement: Any, *params: Any) -> None:
    conn: psycopg.Connection[Any] = sba.conn
    conn.execute(statement, params)


def test_import_contract_fails_if_contract_not_found(importer) -> None:
    response = import_contract(importer, nft_collection("nowhere", 1, 1).contract_id)
    assert response.status_code == 422
    assert response.json == {"error": "Contract not found"}


def test_import_contract_fails_if_contract_is_not_a_token_contract(importer, sba) -> None:
    market = plain_contract("market", 1)
    deploy(sba, market)
    response = import_contract(importer, market.contract_id)
    assert response.status_code == 422
    assert response.json == {"error": "Not a token contract"}


def test_import_contract_fails_if_contract_does_not_have_abi(importer, sba) -> None:
    coin = fungible_token("coin", 1, symbol="CN")
    deploy(sba, coin)
    sba_execute(
        sba,
        "UPDATE smart_contracts SET abi = 'null'::jsonb WHERE contract_id = %s",
        coin.contract_id,
    )
    response = import_contract(importer, coin.contract_id)
    assert response.status_code == 422
    assert response.json == {"error": "Contract does not have an interface"}


def test_import_contract_fails_if_transaction_is_not_found(importer, sba) -> None:
    coin = fungible_token("coin", 1, symbol="CN")
    deploy(sba, coin)
    sba_execute(
        sba,
        "DELETE FROM txs WHERE tx_id = (SELECT tx_id FROM smart_contracts WHERE contract_id = %s)",
        coin.contract_id,
    )
    response = import_contract(importer, coin.contract_id)
    assert response.status_code == 422
    assert response.json == {"error": "Contract deploy transaction not found"}


def test_import_contract_fails_if_block_is_not_found(importer, sba) -> None:
    coin = fungible_token("coin", 1, symbol="CN")
    block = deploy(sba, coin)
    sba_execute(sba, "DELETE FROM blocks WHERE index_block_hash = %s", block.index_block_hash)
    response = import_contract(importer, coin.contract_id)
    assert response.status_code == 422
    assert response.json == {"error": "Contract deploy block not found"}


def test_import_contract_successfully_enqueues_contract(importer, sba, db, broker) -> None:
    coin = fungible_token("coin", 1, symbol="CN")
    block = deploy(sba, coin)
    assert_empty_200(import_contract(importer, coin.contract_id))
    with db.begin() as s:
        stored = s.scalars(select(SmartContract)).one()
        (job,) = s.scalars(select(Job))
    assert (stored.principal, stored.sip, stored.block_height) == (
        coin.contract_id,
        Sip.SIP_010,
        block.height,
    )
    assert (job.smart_contract_id, job.status) == (stored.id, JobStatus.QUEUED)
    assert queued_jobs(broker, CONTRACTS_QUEUE) == [job.id]


def test_import_contract_needs_the_stacks_api_database(admin) -> None:
    response = import_contract(admin, new_principal())
    assert response.status_code == 422
    assert response.json == {"error": "Stacks API database is not configured"}


# --- bad requests --------------------------------------------------------------------------

BAD_BODIES = [
    ({}, "body/contractId must have required property 'contractId'"),
    ({"contractId": "not-a-principal"}, "body/contractId must match pattern"),
    ({"contractId": 5}, "body/contractId must be string"),
    ({"contractId": PRINCIPAL, "tokenIds": 1}, "body/tokenIds must be array"),
    ({"contractId": PRINCIPAL, "tokenIds": [1, -1]}, "body/tokenIds/1 must be >= 0"),
    ({"contractId": PRINCIPAL, "tokenIds": ["1"]}, "body/tokenIds/0 must be integer"),
    ({"contractId": PRINCIPAL, "tokenIds": [1.5]}, "body/tokenIds/0 must be integer"),
    ({"contractId": PRINCIPAL, "tokenIds": [True]}, "body/tokenIds/0 must be integer"),
    ({"contractId": PRINCIPAL, "tokenIds": [2**128]}, "body/tokenIds/0 must be <= "),
    ([PRINCIPAL], "body must be object"),
    ({"contractId": None}, "body/contractId must be string"),
    ({"contractId": PRINCIPAL, "tokenIds": None}, "body/tokenIds must be array"),
]


@pytest.mark.parametrize("route", ["/refresh-token", "/cache-images"])
def test_a_malformed_body_is_a_400_naming_the_field(admin: CheckedClient, route: str) -> None:
    for body, message in BAD_BODIES:
        response = post(admin, route, body)
        assert response.status_code == 400, body
        assert response.json["statusCode"] == 400
        assert response.json["code"] == "FST_ERR_VALIDATION"
        assert response.json["error"] == "Bad Request"
        assert response.json["message"].startswith(message), body


def test_import_contract_validates_its_body(admin: CheckedClient) -> None:
    response = post(admin, "/import-contract", {"contractId": "SP1.x"})
    assert response.status_code == 400
    assert response.json["message"].startswith("body/contractId must match pattern")


def test_a_body_that_is_not_json_is_a_400(admin: CheckedClient) -> None:
    for data, content_type in (("{nope", "application/json"), ("contractId=x", "text/plain")):
        response = admin.post(
            PREFIX + "/refresh-token", data=data, content_type=content_type, headers=AUTH
        )
        assert response.status_code == 400, data
        assert response.json["code"] == "FST_ERR_VALIDATION"


def test_progress_of_a_malformed_principal_is_a_400(admin: CheckedClient) -> None:
    response = admin.get(PREFIX + "/progress/not-a-principal", headers=AUTH)
    assert response.status_code == 400
    assert response.json["message"].startswith("params/principal must match pattern")


# --- progress ------------------------------------------------------------------------------


@pytest.fixture
def backfill(db) -> str:
    """An NFT collection half done (two tokens finished just now) and an FT contract."""
    with db.begin() as s:
        nft = add_contract(s)
        statuses = [JobStatus.DONE] * 4 + [JobStatus.PENDING] * 3 + [JobStatus.QUEUED]
        statuses += [JobStatus.FAILED, JobStatus.INVALID]
        tokens = [add_token(s, nft, n, job_status=st) for n, st in enumerate(statuses, start=1)]
        s.execute(
            update(Job)
            .where(Job.token_id.in_([tokens[0].id, tokens[1].id]))
            .values(updated_at=func.now())
        )
        s.execute(update(SmartContract).where(SmartContract.id == nft.id).values(token_count=10))
        ft = add_contract(s, sip=Sip.SIP_010, job_status=JobStatus.PENDING)
        add_token(s, ft, 1, job_status=JobStatus.PENDING)
        return nft.principal


def test_progress_counts_jobs_by_kind(admin: CheckedClient, backfill: str) -> None:
    response = admin.get(PREFIX + "/progress", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["kinds"]["nft"] == {"done": 4, "pending": 3, "queued": 1, "failed": 1, "invalid": 1}
    assert body["kinds"]["ft"] == {"pending": 1}
    assert body["kinds"]["sip-009"] == {"done": 1}
    assert body["kinds"]["sip-010"] == {"pending": 1}
    assert body["tokens"] == {"total": 11, "finished": 6}
    assert body["window_s"] == 60
    assert body["tokens_per_second"] == pytest.approx(2 / 60)
    assert body["seconds_left"] == pytest.approx(5 / (2 / 60))


def test_progress_of_one_contract(admin: CheckedClient, backfill: str) -> None:
    response = admin.get(f"{PREFIX}/progress/{backfill}", headers=AUTH)
    assert response.status_code == 200
    assert response.json == {
        "contract_id": backfill,
        "sip": "sip-009",
        "token_count": 10,
        "contract_job": "done",
        "tokens": {"pending": 3, "queued": 1, "done": 4, "failed": 1, "invalid": 1, "total": 10},
        "finished": 6,
        "window_s": 60,
        "tokens_per_second": pytest.approx(2 / 60),
        "seconds_left": pytest.approx(4 / (2 / 60)),
    }


def test_progress_of_a_contract_still_being_enumerated_has_no_estimate(admin, db) -> None:
    with db.begin() as s:
        principal = add_contract(s, job_status=JobStatus.PENDING).principal
    body = admin.get(f"{PREFIX}/progress/{principal}", headers=AUTH).json
    assert body["contract_job"] == "pending"
    assert body["token_count"] is None
    assert body["tokens"]["total"] == 0
    assert body["seconds_left"] is None


def test_progress_of_an_unknown_contract_is_404(admin: CheckedClient) -> None:
    response = admin.get(f"{PREFIX}/progress/{new_principal()}", headers=AUTH)
    assert response.status_code == 404
    assert response.json == {"error": "Contract not found"}


def test_hosts_shows_each_hosts_adaptive_limit_most_throttled_first(admin, db, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    caps = {"small.example": 16, "gw.example": 64}
    limits = AdaptiveLimits(client, caps.__getitem__, flush_every=1)
    try:
        limits.overloaded("small.example", "429")
        limits.succeeded("gw.example", 0.02)
        with session_scope(db) as session:
            session.add(
                RateLimitedHost(
                    hostname="small.example", retry_after=datetime.now(UTC) + timedelta(minutes=1)
                )
            )
        response = admin.get("/metadata/v1/admin/hosts", headers=AUTH)
        assert response.status_code == 200
        results = response.get_json()["results"]  # other tests' hosts may be there too
        ours = [r for r in results if r["host"] in caps]
        gateway, small = ours  # 4 of 64 is more throttled than 2 of 16
        # A new host starts at 4: one 429 halves it (the end of slow start); a clean answer
        # with nothing in flight leaves the other at 4 (slow start grows a limit in use).
        assert (small["host"], small["limit"], small["cap"]) == ("small.example", 2, 16)
        assert (small["last_cut_reason"], small["last_failed_at_limit"]) == ("429", 4)
        assert small["rate_limited_until"] is not None
        assert (gateway["host"], gateway["limit"], gateway["cap"]) == ("gw.example", 4, 64)
        assert gateway["usual_latency_ms"] == 20.0
        assert gateway["last_cut_at"] is None
        assert admin.get("/metadata/v1/admin/hosts").status_code == 401
    finally:
        for key in client.scan_iter(LIMIT_PREFIX + "*"):
            client.delete(key)
        client.close()
