"""What token and contract jobs write to the change log, in the transaction that stores their
result (docs/change-feed.md#kinds): metadata stored, supplies read, jobs ending invalid, and
the statements a large enumeration takes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token
from support.changes import logged

from shared.config import Settings
from shared.db import session_scope
from shared.errors import InvalidReason, MetadataParseError, StacksNodeError
from shared.indexing.contracts import load_contract, store_contract_tokens
from shared.indexing.tokens import TokenData, TokenRef, load_token, store_tokens_data
from shared.jobs.runner import JobContext, settle_errors
from shared.jobs.transitions import ClaimedJob, claim_jobs, mark_queued
from shared.metadata.parse import ParsedMetadata
from shared.models import ChangeKind, Job, JobStatus, Sip, Token

UPDATED = ChangeKind.METADATA_UPDATED


def document(name: str, locale: str | None = None, default: bool = True) -> ParsedMetadata:
    raw = {"sip": 16, "name": name}
    return ParsedMetadata(
        name=name,
        description=None,
        image=None,
        attributes=[],
        properties={},
        l10n_locale=locale,
        l10n_uri=None,
        l10n_default=default,
        raw=raw,
    )


@pytest.fixture
def nft(sessions: sessionmaker[Session]) -> TokenRef:
    with session_scope(sessions) as s:
        token = add_token(s, add_contract(s), 7, processed=False)
        ref = load_token(s, token.id)
    assert ref is not None
    return ref


def store(sessions: sessionmaker[Session], token: TokenRef, data: TokenData, **kw: Any) -> None:
    with session_scope(sessions) as s:
        store_tokens_data(s, [(token, data)], **kw)


@pytest.mark.parametrize("cache_images", [False, True])
def test_each_store_records_metadata_updated_and_whether_the_documents_changed(
    sessions, nft: TokenRef, cache_images: bool
) -> None:
    def stored(*rows: ParsedMetadata) -> bool:
        store(sessions, nft, TokenData(uri="u", metadata=list(rows)), cache_images=cache_images)
        latest = logged(sessions)[-1]
        assert latest.key == ("metadata_updated", nft.contract_principal, 7)
        return bool(latest.details["document_changed"])

    assert stored(document("A")) is True  # the first document
    assert stored(document("A")) is False  # fetched again, the same
    assert stored(document("B")) is True
    assert stored(document("B"), document("B-es", "es", False)) is True  # a new locale
    assert stored(document("B"), document("B-es", "es", False)) is False
    assert stored() is True  # the documents are gone
    assert stored() is False
    assert len(logged(sessions)) == 7


def test_a_token_deleted_meanwhile_records_nothing(sessions, nft: TokenRef) -> None:
    with session_scope(sessions) as s:
        s.query(Token).filter_by(id=nft.id).delete()
    store(sessions, nft, TokenData(metadata=[document("A")]))
    assert logged(sessions) == []


def test_a_store_rolled_back_records_nothing(sessions, nft: TokenRef) -> None:
    def failing_store() -> None:
        with session_scope(sessions) as s:
            store_tokens_data(s, [(nft, TokenData(metadata=[document("A")]))])
            raise RuntimeError("the commit never happens")

    with pytest.raises(RuntimeError):
        failing_store()
    assert logged(sessions) == []


def test_a_supply_read_by_a_job_records_supply_changed_when_it_moved(sessions) -> None:
    with session_scope(sessions) as s:
        token = add_token(s, add_contract(s, sip=Sip.SIP_010), 1, processed=False)
        ft = load_token(s, token.id)
    assert ft is not None

    def stored(supply: int | None) -> list[Any]:
        store(sessions, ft, TokenData(name="Coin", total_supply=supply))
        return [e for e in logged(sessions) if e.kind == ChangeKind.SUPPLY_CHANGED]

    big = 2**100
    assert [e.details for e in stored(1000)] == [{"total_supply": "1000"}]
    assert len(stored(1000)) == 1
    assert [e.details for e in stored(big)][-1] == {"total_supply": str(big)}
    assert [e.details for e in stored(None)][-1] == {"total_supply": None}
    assert len(logged(sessions, UPDATED)) == 4


def claimed(sessions: sessionmaker[Session], job_id: int) -> ClaimedJob:
    with session_scope(sessions) as s:
        mark_queued(s, [job_id])
        (job,) = claim_jobs(s, [job_id], timedelta(minutes=1))
        return job


def job_of(sessions: sessionmaker[Session], **where: Any) -> int:
    with session_scope(sessions) as s:
        return int(s.scalars(select(Job.id).filter_by(**where)).one())


def test_a_token_job_ending_invalid_records_metadata_invalid(
    sessions, settings: Settings, nft: TokenRef
) -> None:
    with session_scope(sessions) as s:
        s.execute(update(Job).values(status=JobStatus.PENDING))
    invalid = claimed(sessions, job_of(sessions, token_id=nft.id))
    ctx = JobContext(settings, sessions, lambda _messages: None)
    settle_errors(ctx, [(invalid, MetadataParseError("not JSON"))])
    (entry,) = logged(sessions)
    assert entry.key == ("metadata_invalid", nft.contract_principal, 7)
    assert entry.details == {"reason": InvalidReason.METADATA_PARSE_FAILED}


def test_other_endings_and_contract_jobs_record_nothing(
    sessions, settings: Settings, nft: TokenRef
) -> None:
    with session_scope(sessions) as s:
        contract = add_contract(s, job_status=JobStatus.PENDING)
        s.execute(update(Job).values(status=JobStatus.PENDING))
    token_job = claimed(sessions, job_of(sessions, token_id=nft.id))
    contract_job = claimed(sessions, job_of(sessions, smart_contract_id=contract.id))
    ctx = JobContext(replace(settings, job_queue_max_retries=0), sessions, lambda _m: None)
    settle_errors(ctx, [(token_job, StacksNodeError("node down"))])  # failed
    settle_errors(ctx, [(contract_job, MetadataParseError("odd"))])  # invalid, not a token
    assert logged(sessions) == []


@contextmanager
def counted(sessions: sessionmaker[Session]) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def enumerate_collection(sessions: sessionmaker[Session], count: int) -> tuple[str, list[str]]:
    """A contract job creating `count` tokens, and the statements its transaction sent."""
    with session_scope(sessions) as s:
        contract = add_contract(s, job_status=JobStatus.QUEUED)
        job_id = s.scalars(select(Job.id).filter_by(smart_contract_id=contract.id)).one()
        ref = load_contract(s, contract.id)
    assert ref is not None
    with counted(sessions) as statements, session_scope(sessions) as s:
        store_contract_tokens(s, ref, count, ClaimedJob(job_id, None, contract.id, 0))
    return contract.principal, statements


def test_a_10000_token_enumeration_writes_its_entries_in_two_statements_and_notifies(
    sessions,
) -> None:
    small_principal, small = enumerate_collection(sessions, 100)
    principal, large = enumerate_collection(sessions, 10_000)
    writes = [sql for sql in large if "changes" in sql or "pg_advisory_xact_lock" in sql]
    assert len(writes) == 3  # the lock, one INSERT of 10,000 rows, the stream's wake-up
    assert "pg_advisory_xact_lock" in writes[0]
    assert writes[1].split()[:3] == ["INSERT", "INTO", "changes"]
    assert "pg_notify" in writes[2]
    assert large[-3:] == writes  # the transaction's last statements
    assert len(large) - len(small) == 1  # one more INSERT of tokens (5,000 a statement)
    entries = logged(sessions, contract=principal)
    assert len(entries) == 10_000
    assert [e.token for e in entries[:3]] == [1, 2, 3]
    assert len(logged(sessions, contract=small_principal)) == 100
