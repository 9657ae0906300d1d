"""The change log: one row per change to the index, in commit order (docs/change-feed.md).

`changes` holds the entries the feed (`GET /changes`) serves. Their ids come from the table's
sequence under a transaction-level advisory lock that each writer takes last, so ids are
allocated in commit order (docs/change-feed.md#ordering). Entries name contracts by principal
and tokens by number, without foreign keys, so they outlive rows a re-org deletes.
`changes_horizon` is the single row recording the highest id pruned, so the feed can tell a
consumer that fell behind the retention window (docs/change-feed.md#retention).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "token_added",
    "metadata_updated",
    "metadata_invalid",
    "image_cached",
    "owner_changed",
    "token_burned",
    "supply_changed",
    "contract_added",
    "rolled_back",
)


def upgrade() -> None:
    """Upgrade schema."""
    postgresql.ENUM(*KINDS, name="change_kind").create(op.get_bind())
    op.create_table(
        "changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("kind", postgresql.ENUM(name="change_kind", create_type=False), nullable=False),
        sa.Column("contract_principal", sa.Text(), nullable=False),
        sa.Column("token_number", sa.Numeric(), nullable=True),
        sa.Column("block_height", sa.Integer(), nullable=True),
        sa.Column("index_block_hash", sa.Text(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("changes_pkey")),
    )
    op.create_index(
        "changes_contract_principal_id_index",
        "changes",
        ["contract_principal", "id"],
        unique=False,
        postgresql_include=["kind"],
    )
    op.create_index(
        "changes_block_height_index",
        "changes",
        ["block_height"],
        unique=False,
        postgresql_where=sa.text("block_height IS NOT NULL"),
    )
    op.create_table(
        "changes_horizon",
        sa.Column("id", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id", name=op.f("changes_horizon_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("changes_horizon_pkey")),
    )
    op.execute("INSERT INTO changes_horizon (id, pruned_through) VALUES (true, 0)")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("changes_horizon")
    op.drop_index("changes_block_height_index", table_name="changes")
    op.drop_index("changes_contract_principal_id_index", table_name="changes")
    op.drop_table("changes")
    postgresql.ENUM(name="change_kind").drop(op.get_bind())
