"""Job rows: the source of truth for what work remains (docs/job-engine.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, pg_enum
from shared.models.enums import JobStatus


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("NUM_NONNULLS(token_id, smart_contract_id) = 1", name="job_type_check"),
        CheckConstraint(
            "trigger IN ('import', 'mint', 'notification', 'dynamic', 'self_service', 'admin')",
            name="jobs_trigger_check",
        ),
        Index("jobs_status_pending_index", "status", postgresql_where=text("status = 'pending'")),
        Index(
            "jobs_token_id_unique",
            "token_id",
            unique=True,
            postgresql_where=text("smart_contract_id IS NULL"),
        ),
        Index(
            "jobs_smart_contract_id_unique",
            "smart_contract_id",
            unique=True,
            postgresql_where=text("token_id IS NULL"),
        ),
        Index("jobs_token_id_index", "token_id"),
        Index("jobs_smart_contract_id_index", "smart_contract_id"),
        Index("jobs_status_all_index", "status"),
        Index(
            "jobs_status_updated_at_queued_index",
            "status",
            "updated_at",
            postgresql_where=text("status = 'queued'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"))
    smart_contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("smart_contracts.id", ondelete="CASCADE")
    )
    status: Mapped[JobStatus] = mapped_column(
        pg_enum(JobStatus, "job_status"), server_default="pending"
    )
    retry_count: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    invalid_reason: Mapped[int | None] = mapped_column(Integer)
    retry_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Ours: a worker's claim on a queued job; another delivery waits until it expires.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Ours: the last error, for operators (the API only shows the reason code's message).
    last_error: Mapped[str | None] = mapped_column(Text)
    # Ours: what made the job due (docs/fetch-history.md#triggers), and the block time of the
    # mint or notification that did, for the freshness histogram.
    trigger: Mapped[str] = mapped_column(Text, server_default="import")
    caused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateLimitedHost(Base):
    __tablename__ = "rate_limited_hosts"
    __table_args__ = (Index("rate_limited_hosts_hostname_index", "hostname"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hostname: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retry_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
