"""Fetch history: every metadata and image fetch attempt of a token, and what made its job
due (docs/fetch-history.md).

`jobs.trigger` says why a token job is due (`import`, `mint`, `notification`, `dynamic`,
`self_service`, `admin`; a retry keeps its cause); `jobs.caused_at` is the block time of the
mint or notification that made it due, the start of the freshness histogram. An attempt's
trigger may also be `retry`. `fetch_attempts` keeps
the newest attempts of each token (the writer prunes it to FETCH_ATTEMPTS_KEPT as it inserts).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-11 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOB_TRIGGERS = ("import", "mint", "notification", "dynamic", "self_service", "admin")
OUTCOMES = (
    "ok",
    "unchanged",
    "timeout",
    "http_error",
    "parse_error",
    "too_large",
    "blocked",
    "rate_limited",
    "deferred",
)


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("jobs", sa.Column("trigger", sa.Text(), server_default="import", nullable=False))
    op.add_column("jobs", sa.Column("caused_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint("jobs_trigger_check", "jobs", _one_of("trigger", JOB_TRIGGERS))
    op.create_table(
        "fetch_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("reason_code", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('metadata', 'image')", name="fetch_attempts_kind_check"),
        sa.CheckConstraint(
            _one_of("trigger", (*JOB_TRIGGERS, "retry")), name="fetch_attempts_trigger_check"
        ),
        sa.CheckConstraint(_one_of("outcome", OUTCOMES), name="fetch_attempts_outcome_check"),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["tokens.id"],
            name=op.f("fetch_attempts_token_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("fetch_attempts_pkey")),
    )
    op.create_index(
        "fetch_attempts_token_id_id_index", "fetch_attempts", ["token_id", "id"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("fetch_attempts_token_id_id_index", table_name="fetch_attempts")
    op.drop_table("fetch_attempts")
    op.drop_constraint("jobs_trigger_check", "jobs", type_="check")
    op.drop_column("jobs", "caused_at")
    op.drop_column("jobs", "trigger")
