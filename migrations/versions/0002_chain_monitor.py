"""Chain monitor: remembered blocks, applied FT supply deltas, block-height indexes.

`chain_blocks` holds the blocks the monitor applied (re-org detection), `chain_supply_deltas`
the FT supply deltas it applied (re-org undo); the block-height indexes on tokens and
update_notifications serve deleting what orphaned blocks created.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 06:25:50.511439

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "chain_blocks",
        sa.Column("block_height", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("index_block_hash", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("block_height", name=op.f("chain_blocks_pkey")),
    )
    op.create_table(
        "chain_supply_deltas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("block_height", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Numeric(), nullable=False),
        sa.ForeignKeyConstraint(
            ["block_height"],
            ["chain_blocks.block_height"],
            name=op.f("chain_supply_deltas_block_height_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["tokens.id"],
            name=op.f("chain_supply_deltas_token_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("chain_supply_deltas_pkey")),
    )
    op.create_index(
        "chain_supply_deltas_block_height_index",
        "chain_supply_deltas",
        ["block_height"],
        unique=False,
    )
    op.create_index(
        "chain_supply_deltas_token_id_index", "chain_supply_deltas", ["token_id"], unique=False
    )
    op.create_index("tokens_block_height_index", "tokens", ["block_height"], unique=False)
    op.create_index(
        "update_notifications_block_height_index",
        "update_notifications",
        ["block_height"],
        unique=False,
    )
    # An index that already imported keeps its checkpoint as the first remembered block.
    op.execute(
        "INSERT INTO chain_blocks (block_height, index_block_hash)"
        " SELECT block_height, index_block_hash FROM chain_tip WHERE index_block_hash IS NOT NULL"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("update_notifications_block_height_index", table_name="update_notifications")
    op.drop_index("tokens_block_height_index", table_name="tokens")
    op.drop_index("chain_supply_deltas_token_id_index", table_name="chain_supply_deltas")
    op.drop_index("chain_supply_deltas_block_height_index", table_name="chain_supply_deltas")
    op.drop_table("chain_supply_deltas")
    op.drop_table("chain_blocks")
