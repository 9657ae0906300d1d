"""Image cache: one image job per metadata row whose image is cached.

Image jobs live apart from `jobs`: an image that cannot be fetched or decoded never
invalidates its token (docs/reference-differences.md#image-failures), it is retried on its
own schedule.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:12:04.118530

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "image_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metadata_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(name="job_status", create_type=False),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalid_reason", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["metadata_id"],
            ["metadata.id"],
            name=op.f("image_jobs_metadata_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("image_jobs_pkey")),
        sa.UniqueConstraint("metadata_id", name=op.f("image_jobs_metadata_id_unique")),
    )
    op.create_index(
        "image_jobs_pending_retry_after_index",
        "image_jobs",
        ["retry_after"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "image_jobs_queued_updated_at_index",
        "image_jobs",
        ["updated_at"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("image_jobs_queued_updated_at_index", table_name="image_jobs")
    op.drop_index("image_jobs_pending_retry_after_index", table_name="image_jobs")
    op.drop_table("image_jobs")
