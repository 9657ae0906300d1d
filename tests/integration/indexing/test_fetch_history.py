"""Fetch history (docs/fetch-history.md) written by the real job code against a simulated chain
and loopback metadata hosts: each attempt with its answer and outcome, the trigger of every
way a job is made due, the 20 kept per token, and the freshness of notified and minted tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from prometheus_client import REGISTRY
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session
from support.builders import add_contract, add_token
from support.chain_run import ChainRun, attempts_of, chain_run
from support.http_server import Reply, ScriptedServer

from devnet.scenario import nft_collection
from shared.admin import refresh_tokens, retry_failed_jobs
from shared.chain.mints import store_mints
from shared.chain.notifications import apply_notification, refresh_dynamic_tokens
from shared.db import session_scope
from shared.indexing.fetch_history import FETCH_ATTEMPTS_KEPT, write_attempts
from shared.jobs.transitions import mark_queued
from shared.models import Job, JobStatus, Token, TokenType, TokenUpdateMode
from shared.queues import JobMessage
from shared.refresh import request_refresh
from shared.stacks.chain_events import EventPosition, Mint, Notification
from shared.stacks.prints import MetadataUpdate


@pytest.fixture
def host() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def run_chain(settings, sessions, stacks_api_database_url) -> Callable[..., Any]:
    fast = replace(settings, metadata_fetch_timeout_ms=400, metadata_max_payload_byte_size=10_000)
    return lambda *contracts: chain_run(fast, sessions, stacks_api_database_url, *contracts)


def doc(name: str) -> Reply:
    return Reply(200, json.dumps({"name": name}).encode(), {"Content-Type": "application/json"})


def job_row(run: ChainRun, job_id: int) -> Job:
    with session_scope(run.sessions) as session:
        return session.get_one(Job, job_id)


def test_a_failing_host_leaves_every_attempt_with_its_status_and_a_retry_due(
    run_chain, host
) -> None:
    nft = nft_collection("down", 1, 2, token_uri=host.route("/down.json", Reply(500, b"oops")))
    with run_chain(nft) as run:
        job_id = run.job_id(nft)
        run.run_now(job_id)
        attempts = attempts_of(run.sessions, job_id)
        job = job_row(run, job_id)
    assert [(a["outcome"], a["http_status"], a["reason_code"]) for a in attempts] == [
        ("http_error", 500, 107)
    ] * 2
    assert [a["trigger"] for a in attempts] == ["retry", "import"]
    assert all(a["url"] == host.url + "/down.json" and a["kind"] == "metadata" for a in attempts)
    assert all(a["duration_ms"] is not None for a in attempts)
    assert (job.status, job.retry_count, job.invalid_reason) == (JobStatus.PENDING, 2, 107)
    assert job.retry_after is not None
    assert job.retry_after > datetime.now(UTC)


def test_a_host_failing_past_the_retries_ends_invalid_107(run_chain, settings, host) -> None:
    nft = nft_collection("gone", 1, 2, token_uri=host.route("/gone.json", Reply(503, b"")))
    with run_chain(nft) as run:
        run.processor.ctx.settings = replace(run.processor.ctx.settings, job_queue_max_retries=1)
        job_id = run.job_id(nft)
        run.run_now(job_id)
        job = job_row(run, job_id)
        attempts = attempts_of(run.sessions, job_id)
    assert (job.status, job.invalid_reason) == (JobStatus.INVALID, 107)
    assert [a["http_status"] for a in attempts] == [503, 503]


def test_a_document_fetched_again_unchanged_reads_unchanged(run_chain, host) -> None:
    body = doc("Same")
    nft = nft_collection("same", 1, 2, token_uri=host.route("/same.json", body))
    with run_chain(nft) as run:
        job_id = run.job_id(nft)
        with session_scope(run.sessions) as session:
            principal = nft.contract_id
            run.broker(refresh_tokens(session, principal, [1]))
        run.drain()
        attempts = attempts_of(run.sessions, job_id)
    assert [(a["outcome"], a["trigger"]) for a in attempts] == [
        ("unchanged", "admin"),
        ("ok", "import"),
    ]
    assert all((a["http_status"], a["bytes"]) == (200, len(body.body)) for a in attempts)


def test_immediate_retries_of_a_timeout_are_each_an_attempt(run_chain, host) -> None:
    nft = nft_collection("slow", 1, 2, token_uri=host.route("/slow.json", Reply(delay_s=1.5)))
    with run_chain(nft) as run:
        attempts = attempts_of(run.sessions, run.job_id(nft))
    assert [(a["outcome"], a["reason_code"]) for a in attempts] == [("timeout", 103)] * 3


def test_credentials_in_a_token_uri_are_not_recorded(run_chain, host) -> None:
    host.route("/private.json", doc("Private"))
    uri = host.url.replace("http://", "http://user:secret@") + "/private.json"
    nft = nft_collection("creds", 1, 2, token_uri=uri)
    with run_chain(nft) as run:
        [attempt] = attempts_of(run.sessions, run.job_id(nft))
    assert attempt["url"] == host.url + "/private.json"
    assert "secret" not in json.dumps(attempt, default=str)


def test_a_rate_limited_host_is_recorded_without_a_request(run_chain, host) -> None:
    answer = Reply(429, b"", {"Retry-After": "120"})  # without it, no pause (host-slots.md)
    nft = nft_collection("busy", 1, 2, token_uri=host.route("/b.json", answer))
    with run_chain(nft) as run:
        job_id = run.job_id(nft)
        run.run_now(job_id)
        attempts = attempts_of(run.sessions, job_id)
    assert [(a["outcome"], a["http_status"], a["url"] is None) for a in attempts] == [
        ("rate_limited", None, True),
        ("rate_limited", 429, False),
    ]
    assert host.hits["/b.json"] == 1


# --- triggers (docs/fetch-history.md#triggers) -----------------------------------------------

BLOCK_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def position(height: int = 6) -> EventPosition:
    return EventPosition(height, f"0x{height:064x}", f"0x{height:064x}", 0, 0)


def _mint(run: ChainRun, session: Session, principal: str) -> None:
    mint = Mint(principal, 1, position())
    run.broker(mark(session, store_mints(session, [mint], TokenType.NFT, timedelta(0), BLOCK_TIME)))


def _notification(run: ChainRun, session: Session, principal: str) -> None:
    update_ = MetadataUpdate("nft", principal, (1,), TokenUpdateMode.STANDARD, None)
    run.broker(
        mark(session, apply_notification(session, Notification(update_, position()), BLOCK_TIME))
    )


def _dynamic(run: ChainRun, session: Session, principal: str) -> None:
    update_ = MetadataUpdate("nft", principal, (1,), TokenUpdateMode.DYNAMIC, 0)
    apply_notification(session, Notification(update_, position()), BLOCK_TIME)
    # As if the notification's own refresh had run an hour ago.
    session.execute(update(Job).values(status=JobStatus.DONE, retry_after=None))
    session.execute(update(Token).values(updated_at=datetime.now(UTC) - timedelta(hours=1)))
    run.broker(mark(session, refresh_dynamic_tokens(session, 3600)))


def _self_service(run: ChainRun, session: Session, principal: str) -> None:
    run.broker(request_refresh(session, "nft", principal, 1, timedelta(0)))


def _admin(run: ChainRun, session: Session, principal: str) -> None:
    run.broker(refresh_tokens(session, principal, [1]))


def _admin_retry_failed(run: ChainRun, session: Session, principal: str) -> None:
    session.execute(update(Job).where(Job.token_id.is_not(None)).values(status=JobStatus.FAILED))
    retry_failed_jobs(session)
    run.broker(
        mark(session, list(session.scalars(select(Job.id).where(Job.token_id.is_not(None)))))
    )


def mark(session: Session, job_ids: list[int]) -> list[JobMessage]:
    return mark_queued(session, job_ids)


@pytest.mark.parametrize(
    ("pend", "trigger", "caused_at"),
    [
        (_mint, "mint", BLOCK_TIME),
        (_notification, "notification", BLOCK_TIME),
        (_dynamic, "dynamic", None),
        (_self_service, "self_service", None),
        (_admin, "admin", None),
        (_admin_retry_failed, "admin", None),
    ],
    ids=["mint", "notification", "dynamic", "self_service", "admin", "admin_retry_failed"],
)
def test_each_way_a_job_is_made_due_is_its_attempts_trigger(
    run_chain, host, pend, trigger: str, caused_at: datetime | None
) -> None:
    nft = nft_collection("why", 1, 2, token_uri=host.route("/why.json", doc("Why")))
    with run_chain(nft) as run:
        job_id = run.job_id(nft)
        with session_scope(run.sessions) as session:
            pend(run, session, nft.contract_id)
        job = job_row(run, job_id)
        assert (job.trigger, job.caused_at) == (trigger, caused_at)
        run.drain()
        attempts = attempts_of(run.sessions, job_id)
    assert [a["trigger"] for a in attempts] == [trigger, "import"]


def test_freshness_of_a_notified_token_is_observed_at_its_commit(run_chain, host) -> None:
    nft = nft_collection("fresh", 2, 2, token_uri=host.route("/fresh.json", doc("Fresh")))
    labels = {"cause": "notification"}
    count_before = REGISTRY.get_sample_value("token_metadata_freshness_seconds_count", labels)
    sum_before = REGISTRY.get_sample_value("token_metadata_freshness_seconds_sum", labels)
    with run_chain(nft) as run:
        with session_scope(run.sessions) as session:
            update_ = MetadataUpdate("nft", nft.contract_id, None, TokenUpdateMode.STANDARD, None)
            notified = Notification(update_, position())
            an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
            run.broker(mark(session, apply_notification(session, notified, an_hour_ago)))
        run.drain()
    count = REGISTRY.get_sample_value("token_metadata_freshness_seconds_count", labels)
    total = REGISTRY.get_sample_value("token_metadata_freshness_seconds_sum", labels)
    assert count == (count_before or 0) + 2  # both tokens of the collection
    assert 2 * 3600 <= total - (sum_before or 0) < 2 * 3700


# --- pruning ---------------------------------------------------------------------------------


def attempt(token_id: int, n: int) -> dict[str, Any]:
    return {
        "token_id": token_id,
        "at": datetime.now(UTC).isoformat(),
        "kind": "metadata",
        "trigger": "import",
        "url": f"http://example.test/{n}",
        "http_status": 200,
        "bytes": n,
        "duration_ms": 1,
        "outcome": "ok",
        "reason_code": None,
    }


def kept(session: Session, token_id: int) -> list[int]:
    return list(
        session.scalars(
            text("SELECT bytes FROM fetch_attempts WHERE token_id = :t ORDER BY id DESC"),
            {"t": token_id},
        )
    )


def test_each_token_keeps_its_newest_20_attempts(sessions) -> None:
    with session_scope(sessions) as session:
        contract = add_contract(session)
        one, other = add_token(session, contract, 1), add_token(session, contract, 2)
        for n in range(25):  # one write at a time, as token runs write them
            write_attempts(session, [attempt(one.id, n)])
        write_attempts(session, [attempt(other.id, n) for n in range(3)])
        assert kept(session, one.id) == list(range(24, 4, -1))
        write_attempts(session, [attempt(one.id, n) for n in range(100, 103)])
        assert kept(session, one.id) == [102, 101, 100, *range(24, 7, -1)]
        assert kept(session, other.id) == [2, 1, 0]
    assert FETCH_ATTEMPTS_KEPT == 20


def test_one_write_of_more_than_20_keeps_its_newest_20(sessions) -> None:
    with session_scope(sessions) as session:
        token = add_token(session, add_contract(session))
        write_attempts(session, [attempt(token.id, n) for n in range(5)])
        write_attempts(session, [attempt(token.id, n) for n in range(100, 130)])
        assert kept(session, token.id) == list(range(129, 109, -1))


def test_attempts_of_a_token_deleted_meanwhile_are_dropped(sessions) -> None:
    with session_scope(sessions) as session:
        token = add_token(session, add_contract(session))
        gone = token.id
        session.delete(token)
        session.flush()
        write_attempts(session, [attempt(gone, 1)])
        assert kept(session, gone) == []


def test_the_migration_downgrades_and_upgrades_with_jobs_in_place(database_url, sessions) -> None:
    with session_scope(sessions) as session:
        token = add_token(session, add_contract(session))
        write_attempts(session, [attempt(token.id, 1)])
    config = Config(str(Path(__file__).resolve().parents[3] / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", database_url)
    command.downgrade(config, "0010")
    command.upgrade(config, "head")
    with session_scope(sessions) as session:
        job = session.scalars(select(Job).where(Job.token_id == token.id)).one()
        assert (job.trigger, job.caused_at) == ("import", None)
        assert kept(session, token.id) == []


def test_a_single_token_run_records_its_failed_fetches_too(run_chain, host) -> None:
    nft = nft_collection("single", 1, 2, token_uri=host.route("/one.json", Reply(502, b"")))
    with run_chain(nft) as run:
        job_id = run.job_id(nft)
        with session_scope(run.sessions) as session:
            session.execute(update(Job).where(Job.id == job_id).values(retry_after=None))
            mark_queued(session, [job_id])
        run.processor.process_token(job_id)
        attempts = attempts_of(run.sessions, job_id)
    assert [(a["trigger"], a["http_status"]) for a in attempts] == [("retry", 502), ("import", 502)]
