"""Image jobs in Postgres: pending -> queued -> done | failed, apart from token jobs.

A metadata row gets an image job when it has an image of its own: the default locale's row,
and any other locale's row whose image differs from the default's (the others share the
default's cached files). The transitions are the job engine's (`shared/jobs/table.py`); a
claim's lease value is also its token, so a message delivered twice, or a worker that
outlived its lease, changes nothing. Why apart: docs/reference-differences.md#image-failures.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Numeric, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from shared.changes import entry, record
from shared.jobs.table import IMAGE_JOBS, JobOutcome
from shared.models import ChangeKind, ImageJob, JobStatus, Metadata, SmartContract, Token
from shared.sql_params import any_of

_LOCALE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ClaimedImageJob:
    id: int
    metadata_id: int
    retry_count: int
    claim: datetime  # the lease end this claim set: only its holder may finish the job
    token_id: int
    principal: str
    token_number: int
    image: str
    locale: str | None
    is_default: bool

    @property
    def key_stem(self) -> str:
        """`<principal>/<token_number>`, plus the locale for a locale's own image."""
        stem = f"{self.principal}/{self.token_number}"
        if self.is_default or not self.locale:
            return stem
        locale = _LOCALE_UNSAFE.sub("_", self.locale)[:64]
        if locale != self.locale:  # keep distinct locales distinct after escaping
            locale += "_" + hashlib.sha256(self.locale.encode()).hexdigest()[:8]
        return f"{stem}-{locale}"


@dataclass(frozen=True)
class ImageOutcome(JobOutcome):
    """A finished image job, with the URLs of the files it cached."""

    cached_image: str | None = None
    cached_thumbnail_image: str | None = None


@contextmanager
def keeping_cached_images(session: Session, token_id: int, *, enabled: bool) -> Iterator[None]:
    """Around replacing a token's metadata rows (IMAGE_CACHE_PROCESSOR_ENABLED): every new
    row with an image of its own gets an image job, and a row whose image is unchanged keeps
    its cached URLs meanwhile (the job then refreshes the files behind them)."""
    if not enabled:
        yield
        return
    cached = session.execute(
        select(
            Metadata.l10n_locale,
            Metadata.image,
            Metadata.cached_image,
            Metadata.cached_thumbnail_image,
        ).where(Metadata.token_id == token_id, Metadata.cached_image.is_not(None))
    ).all()
    yield
    for row in cached:
        session.execute(
            update(Metadata)
            .where(Metadata.token_id == token_id, Metadata.image == row.image)
            .where(Metadata.l10n_locale.is_not_distinct_from(row.l10n_locale))
            .values(
                cached_image=row.cached_image, cached_thumbnail_image=row.cached_thumbnail_image
            )
            .execution_options(synchronize_session=False)
        )
    schedule_image_jobs(session, token_id)


def schedule_image_jobs(session: Session, token_id: int) -> int:
    """Create (or reset) the image jobs of a token's metadata rows, just stored."""
    return _upsert_jobs(session, Metadata.token_id == token_id)


def reset_image_jobs(
    session: Session, smart_contract_id: int, token_numbers: Sequence[int] | None
) -> int:
    """Pend these tokens' image jobs, due now, creating missing ones (admin `cache-images`);
    all of the contract's tokens when `token_numbers` is None. Returns the jobs touched."""
    tokens = select(Token.id).where(Token.smart_contract_id == smart_contract_id)
    if token_numbers is not None:
        if not token_numbers:
            return 0
        tokens = tokens.where(Token.token_number == any_of("numbers", token_numbers, Numeric))
    return _upsert_jobs(session, Metadata.token_id.in_(tokens.scalar_subquery()))


def _upsert_jobs(session: Session, rows: ColumnElement[bool]) -> int:
    """A job runs again from scratch; one running now becomes due when its lease ends."""
    statement = (
        insert(ImageJob)
        .from_select(["metadata_id"], select(Metadata.id).where(rows, _has_own_image()))
        .on_conflict_do_update(
            index_elements=[ImageJob.metadata_id],
            set_=IMAGE_JOBS.pending_again_values(fresh=True),
        )
        .returning(ImageJob.id)
    )
    return len(session.scalars(statement).all())


def _has_own_image() -> ColumnElement[bool]:
    """A string image that is the default row's, or differs from it."""
    default = aliased(Metadata)
    default_image = (
        select(default.image)
        .where(default.token_id == Metadata.token_id, default.l10n_default.is_(True))
        .limit(1)
        .scalar_subquery()
    )
    return and_(
        Metadata.image.is_not(None),
        Metadata.image != "",
        or_(Metadata.l10n_default.is_(True), Metadata.image.is_distinct_from(default_image)),
    )


def queue_due_image_jobs(
    session: Session, limit: int, *, max_waiting: int | None = None
) -> list[int]:
    """Mark due pending image jobs queued (oldest first) and return their ids, to send after
    the commit; `max_waiting` caps how many may sit queued at once, so a backlog waits here
    rather than in Redis."""
    if max_waiting is not None:
        limit = min(limit, max_waiting - IMAGE_JOBS.count_queued(session))
    if limit <= 0:
        return []
    order = [func.coalesce(ImageJob.retry_after, ImageJob.updated_at), ImageJob.id]
    due = IMAGE_JOBS.lock_due(session, limit, order_by=order)
    queued = {row.id for row in IMAGE_JOBS.mark_queued(session, due)} if due else set()
    return [job_id for job_id in due if job_id in queued]


def claim_image_job(session: Session, job_id: int, lease: timedelta) -> ClaimedImageJob | None:
    """Take a queued image job for `lease`, with what caching it needs; None if not claimable."""
    joined = [
        Metadata.id == ImageJob.metadata_id,
        Token.id == Metadata.token_id,
        SmartContract.id == Token.smart_contract_id,
    ]
    returning = (
        ImageJob.metadata_id,
        Token.id.label("token_id"),
        SmartContract.principal,
        Token.token_number,
        Metadata.image,
        Metadata.l10n_locale,
        Metadata.l10n_default,
    )
    rows = IMAGE_JOBS.claim(session, [job_id], lease, returning=returning, where=joined)
    row = rows[0] if rows else None
    if row is None:
        return None
    return ClaimedImageJob(
        id=row.id,
        metadata_id=row.metadata_id,
        retry_count=row.retry_count,
        claim=row.locked_until,
        token_id=row.token_id,
        principal=row.principal,
        token_number=int(row.token_number),
        image=row.image or "",
        locale=row.l10n_locale,
        is_default=bool(row.l10n_default),
    )


def finish_image_job(session: Session, job: ClaimedImageJob, outcome: JobOutcome) -> bool:
    """Record the outcome while our claim holds; on success set the cached image URLs of
    the row and of the token's rows sharing its image. False if the claim was lost."""
    finished = IMAGE_JOBS.finish(session, [job.id], outcome, claim=job.claim)
    if not finished:
        return False
    if outcome.status == JobStatus.DONE and isinstance(outcome, ImageOutcome):
        _store_cached_urls(session, job, outcome)
    return True


def _store_cached_urls(session: Session, job: ClaimedImageJob, outcome: ImageOutcome) -> None:
    """The token changed for API clients too: its `updated_at` (the ETag) moves, and the
    change log gets an `image_cached` entry (docs/change-feed.md#kinds)."""
    has_own_job = select(ImageJob.id).where(ImageJob.metadata_id == Metadata.id).exists()
    session.execute(
        update(Metadata)
        .where(
            or_(
                Metadata.id == job.metadata_id,
                and_(
                    Metadata.token_id == job.token_id,
                    Metadata.image == job.image,
                    ~has_own_job,
                ),
            )
        )
        .values(
            cached_image=outcome.cached_image,
            cached_thumbnail_image=outcome.cached_thumbnail_image,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Token)
        .where(Token.id == job.token_id, Token.updated_at.is_not(None))
        .values(updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    details = {
        "locale": None if job.is_default else job.locale,
        "cached_image": outcome.cached_image,
        "cached_thumbnail_image": outcome.cached_thumbnail_image,
    }
    cached = entry(ChangeKind.IMAGE_CACHED, job.principal, job.token_number, details=details)
    record(session, [cached])
