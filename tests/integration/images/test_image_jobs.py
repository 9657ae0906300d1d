"""Image job rows: which metadata rows get one, resets, dispatch, recovery and claims."""

from __future__ import annotations

import threading
from datetime import timedelta

from integration.images.images_support import add_image_token, image_job, metadata_row
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from support.builders import add_contract, add_token

from shared.db import session_scope
from shared.images.jobs import (
    ClaimedImageJob,
    ImageOutcome,
    claim_image_job,
    finish_image_job,
    queue_due_image_jobs,
    reset_image_jobs,
)
from shared.indexing.tokens import TokenData, load_token, store_tokens_data
from shared.jobs.dispatch import LOST_MESSAGE_AFTER
from shared.jobs.recovery import reap_stranded_jobs
from shared.metadata.parse import ParsedMetadata
from shared.models import ImageJob, JobStatus, Metadata, Token

LEASE = timedelta(minutes=2)


def parsed(image: str | None, locale: str | None = None, default: bool = True) -> ParsedMetadata:
    return ParsedMetadata(
        name="Token",
        description=None,
        image=image,
        attributes=[],
        properties={},
        l10n_locale=locale,
        l10n_uri=None,
        l10n_default=default,
    )


def jobs_by_locale(sessions: sessionmaker[Session], token_id: int) -> dict[str | None, ImageJob]:
    with session_scope(sessions) as s:
        rows = s.execute(
            select(Metadata.l10n_locale, ImageJob)
            .join(ImageJob, ImageJob.metadata_id == Metadata.id)
            .where(Metadata.token_id == token_id)
        ).all()
        return {locale: job for locale, job in rows}


def stored_token(sessions: sessionmaker[Session], *rows: ParsedMetadata, cache: bool) -> int:
    with session_scope(sessions) as s:
        token = add_token(s, add_contract(s))
        ref = load_token(s, token.id)
        assert ref is not None
        store_tokens_data(s, [(ref, TokenData(metadata=list(rows)))], cache_images=cache)
        return token.id


def test_stored_metadata_gets_one_image_job_per_row_with_an_image_of_its_own(sessions) -> None:
    token_id = stored_token(
        sessions,
        parsed("https://img.example/1.png", "en", True),
        parsed("https://img.example/1.png", "es", False),  # the default's image: shares it
        parsed("https://img.example/1-fr.png", "fr", False),
        parsed(None, "de", False),
        cache=True,
    )
    jobs = jobs_by_locale(sessions, token_id)
    assert sorted(jobs) == ["en", "fr"]
    assert {job.status for job in jobs.values()} == {JobStatus.PENDING}


def test_no_image_jobs_while_the_cache_is_disabled(sessions) -> None:
    token_id = stored_token(sessions, parsed("https://img.example/1.png"), cache=False)
    assert jobs_by_locale(sessions, token_id) == {}


def test_a_refresh_keeps_the_cached_urls_of_an_unchanged_image_and_caches_it_again(
    sessions,
) -> None:
    token_id = stored_token(
        sessions, parsed("https://img.example/a.png"), parsed("ipfs://b", "fr", False), cache=True
    )
    with session_scope(sessions) as s:
        s.execute(
            update(Metadata)
            .where(Metadata.token_id == token_id)
            .values(cached_image=Metadata.image + "#cached", cached_thumbnail_image="thumb")
        )
        s.execute(update(ImageJob).values(status=JobStatus.DONE))
        ref = load_token(s, token_id)
        assert ref is not None
        refreshed = [parsed("https://img.example/a.png"), parsed("ipfs://c", "fr", False)]
        store_tokens_data(s, [(ref, TokenData(metadata=refreshed))], cache_images=True)
    with session_scope(sessions) as s:
        rows = {
            m.l10n_locale: (m.cached_image, m.cached_thumbnail_image)
            for m in s.scalars(select(Metadata).where(Metadata.token_id == token_id))
        }
    assert rows == {None: ("https://img.example/a.png#cached", "thumb"), "fr": (None, None)}
    jobs = jobs_by_locale(sessions, token_id)
    assert {locale: job.status for locale, job in jobs.items()} == {
        None: JobStatus.PENDING,
        "fr": JobStatus.PENDING,
    }


def test_reset_pends_finished_jobs_and_creates_missing_ones(sessions) -> None:
    with session_scope(sessions) as s:
        contract = add_contract(s)
        tokens = [add_token(s, contract, token_number=n) for n in (1, 2, 3)]
        for token in tokens:
            s.execute(
                Metadata.__table__.insert().values(
                    token_id=token.id, sip=16, name="t", l10n_default=True, image="https://i/x.png"
                )
            )
    assert jobs_by_locale(sessions, tokens[0].id) == {}  # stored while the cache was off
    with session_scope(sessions) as s:
        assert reset_image_jobs(s, contract.id, [1, 2]) == 2
        assert reset_image_jobs(s, contract.id, []) == 0
    with session_scope(sessions) as s:
        s.execute(
            update(ImageJob).values(
                status=JobStatus.FAILED, retry_count=2, invalid_reason=108, last_error="404"
            )
        )
        assert reset_image_jobs(s, contract.id, None) == 3
    for token in tokens:
        job = jobs_by_locale(sessions, token.id)[None]
        assert (job.status, job.retry_count, job.invalid_reason) == (JobStatus.PENDING, 0, None)
        assert (job.last_error, job.retry_after) == (None, None)


def test_a_running_job_that_is_reset_becomes_due_when_its_lease_ends(sessions) -> None:
    token = add_image_token(sessions, {None: "https://i/1.png"})
    with session_scope(sessions) as s:
        [job_id] = queue_due_image_jobs(s, 10)
    with session_scope(sessions) as s:
        claimed = claim_image_job(s, job_id, LEASE)
    assert claimed is not None
    with session_scope(sessions) as s:
        contract_id = s.scalar(select(Token.smart_contract_id).where(Token.id == token.token_id))
        reset_image_jobs(s, contract_id, None)
    job = image_job(sessions, token.metadata_id)
    assert job.status == JobStatus.PENDING
    assert job.retry_after == claimed.claim
    with session_scope(sessions) as s:
        assert queue_due_image_jobs(s, 10) == []  # not before the running one's lease ends
        done = ImageOutcome(JobStatus.DONE, cached_image="a", cached_thumbnail_image="b")
        assert finish_image_job(s, claimed, done) is False  # the old run changes nothing
    assert metadata_row(sessions, token.metadata_id).cached_image is None


def test_due_jobs_are_queued_oldest_first_within_the_waiting_cap(sessions) -> None:
    tokens = [add_image_token(sessions, {None: f"https://i/{n}.png"}) for n in range(5)]
    jobs = [image_job(sessions, t.metadata_id).id for t in tokens]
    with session_scope(sessions) as s:
        s.execute(
            update(ImageJob)
            .where(ImageJob.id == jobs[4])
            .values(retry_after=func.now() + timedelta(hours=1))
        )
    with session_scope(sessions) as s:
        assert queue_due_image_jobs(s, 2) == jobs[:2]
    with session_scope(sessions) as s:
        assert queue_due_image_jobs(s, 10, max_waiting=3) == jobs[2:3]
    with session_scope(sessions) as s:
        assert queue_due_image_jobs(s, 10, max_waiting=3) == []
        assert queue_due_image_jobs(s, 10) == jobs[3:4]  # the last one is not due yet


def test_stranded_queued_jobs_are_recovered(sessions) -> None:
    tokens = [add_image_token(sessions, {None: f"https://i/{n}.png"}) for n in range(3)]
    with session_scope(sessions) as s:
        dead_worker, lost_message, fresh = queue_due_image_jobs(s, 10)
    with session_scope(sessions) as s:
        assert claim_image_job(s, dead_worker, timedelta(seconds=-1)) is not None  # expired
        s.execute(
            update(ImageJob)
            .where(ImageJob.id == lost_message)
            .values(updated_at=func.now() - timedelta(hours=1))
        )
    with session_scope(sessions) as s:
        reaped = reap_stranded_jobs(s, False, LOST_MESSAGE_AFTER)
        assert (reaped.expired_leases, reaped.lost_messages) == (1, 1)
        assert sorted(queue_due_image_jobs(s, 10)) == sorted([dead_worker, lost_message])
    assert image_job(sessions, tokens[2].metadata_id).status == JobStatus.QUEUED
    with session_scope(sessions) as s:  # Redis came back empty: every unclaimed one is lost
        reap_stranded_jobs(s, True, LOST_MESSAGE_AFTER)
        assert fresh in queue_due_image_jobs(s, 10)


def test_only_one_of_many_concurrent_claims_wins(sessions) -> None:
    token = add_image_token(sessions, {None: "https://i/1.png"})
    with session_scope(sessions) as s:
        [job_id] = queue_due_image_jobs(s, 10)
    barrier = threading.Barrier(6)
    wins: list[ClaimedImageJob | None] = []

    def claim() -> None:
        barrier.wait()
        with session_scope(sessions) as s:
            wins.append(claim_image_job(s, job_id, LEASE))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    claimed = [w for w in wins if w is not None]
    assert len(wins) == 6
    assert len(claimed) == 1
    assert claimed[0].principal == token.principal


def test_success_sets_the_urls_of_rows_sharing_the_image_and_moves_the_token_etag(
    sessions,
) -> None:
    token = add_image_token(
        sessions, {"en": "https://i/1.png", "es": "https://i/1.png", "fr": "https://i/fr.png"}
    )
    with session_scope(sessions) as s:
        before = s.scalar(select(Token.updated_at).where(Token.id == token.token_id))
        due = queue_due_image_jobs(s, 10)
    assert len(due) == 2
    with session_scope(sessions) as s:
        claims = [claim_image_job(s, job_id, LEASE) for job_id in due]
    default = next(c for c in claims if c is not None and c.is_default)
    assert default.key_stem == f"{token.principal}/1"
    with session_scope(sessions) as s:
        outcome = ImageOutcome(JobStatus.DONE, cached_image="/i/1.png", cached_thumbnail_image="t")
        assert finish_image_job(s, default, outcome) is True
    cached = {
        locale: metadata_row(sessions, mid).cached_image
        for locale, mid in token.metadata_ids.items()
    }
    assert cached == {"en": "/i/1.png", "es": "/i/1.png", "fr": None}
    with session_scope(sessions) as s:
        assert s.scalar(select(Token.updated_at).where(Token.id == token.token_id)) > before


def test_a_locale_of_its_own_image_gets_a_safe_distinct_key(sessions) -> None:
    token = add_image_token(
        sessions, {"en": "https://i/1.png", "../x": "https://i/2.png", "pt-BR": "https://i/3.png"}
    )
    with session_scope(sessions) as s:
        due = queue_due_image_jobs(s, 10)
        claims = {c.locale: c for c in (claim_image_job(s, j, LEASE) for j in due) if c}
    assert claims["pt-BR"].key_stem == f"{token.principal}/1-pt-BR"
    stem = claims["../x"].key_stem
    assert stem.startswith(f"{token.principal}/1-___x_")
    assert "/" not in stem.removeprefix(f"{token.principal}/")
    assert claims["en"].key_stem == f"{token.principal}/1"
