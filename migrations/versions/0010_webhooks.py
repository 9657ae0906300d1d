"""Webhooks: subscriptions to the change log and their recent delivery attempts
(docs/webhooks.md).

`webhook_subscriptions` holds each endpoint, its filters and its delivery state: the last
acknowledged entry id, the attempts since, when it started failing and when to try again.
The state lives here, not in Redis, so a flushed broker or a killed worker resumes from the
last acknowledged entry. `webhook_deliveries` keeps the recent attempts (the newest
DELIVERIES_KEPT per subscription) for `GET /admin/webhooks/{id}/deliveries`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    """Upgrade schema."""
    postgresql.ENUM("active", "paused", name="webhook_status").create(op.get_bind())
    postgresql.ENUM("delivered", "failed", "refused", name="webhook_outcome").create(op.get_bind())
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("contracts", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("kinds", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column(
            "status",
            postgresql.ENUM(name="webhook_status", create_type=False),
            server_default="active",
            nullable=False,
        ),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("last_delivered_id", sa.BigInteger(), server_default="0", nullable=False),
        # The highest entry id ever POSTed: a batch reaching back below it is a redelivery.
        sa.Column("sent_through", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        # A delivery holds the subscription until then (one delivery at a time).
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.Text(), nullable=True),
        # When the dispatcher last sent a delivery message for it (a lost one is resent).
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_subscriptions_pkey")),
    )
    op.create_index(
        "webhook_subscriptions_due_index",
        "webhook_subscriptions",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "outcome", postgresql.ENUM(name="webhook_outcome", create_type=False), nullable=False
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("webhook_deliveries_subscription_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_deliveries_pkey")),
    )
    op.create_index(
        "webhook_deliveries_subscription_id_id_index",
        "webhook_deliveries",
        ["subscription_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("webhook_deliveries_subscription_id_id_index", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("webhook_subscriptions_due_index", table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
    postgresql.ENUM(name="webhook_outcome").drop(op.get_bind())
    postgresql.ENUM(name="webhook_status").drop(op.get_bind())
