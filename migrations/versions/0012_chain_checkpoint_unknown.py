"""The chain checkpoint remembers since when the Stacks API database has had no row for its
block (a re-synced or restored database still behind it): the monitor waits meanwhile, says
so once in its log and in a metric (docs/chain-monitor.md#database-swap).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 12:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "chain_tip",
        sa.Column("checkpoint_unknown_since", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("chain_tip", "checkpoint_unknown_since")
