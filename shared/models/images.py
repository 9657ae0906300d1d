"""Image cache jobs: one per metadata row whose image is cached (not in Hiro's API).

Kept apart from `jobs` so that a slow or broken image never holds up, or invalidates, its
token: the token's job ends when its metadata is stored, the image job follows on its own
(docs/reference-differences.md#image-failures).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, pg_enum
from shared.models.enums import JobStatus


class ImageJob(Base):
    __tablename__ = "image_jobs"
    __table_args__ = (
        Index(
            "image_jobs_pending_retry_after_index",
            "retry_after",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "image_jobs_queued_updated_at_index",
            "updated_at",
            postgresql_where=text("status = 'queued'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metadata_id: Mapped[int] = mapped_column(
        ForeignKey("metadata.id", ondelete="CASCADE"), unique=True
    )
    # pending -> queued -> done | failed (never `invalid`: an image does not invalidate).
    status: Mapped[JobStatus] = mapped_column(
        pg_enum(JobStatus, "job_status"), server_default="pending"
    )
    retry_count: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A worker's claim; also the claim's token: only the holder of this exact value finishes.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Hiro's image reason codes: 102 size, 104 timeout, 106 parse/unsupported, 108 HTTP.
    invalid_reason: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
