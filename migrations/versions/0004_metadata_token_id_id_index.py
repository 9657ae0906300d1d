"""metadata (token_id, id) instead of (token_id).

The token read picks a token's default metadata row with `ORDER BY id LIMIT 1`; with only a
token_id index and statistics that lag a backfill, the planner walked the primary key and
filtered thousands of rows (measured: 3.5 ms and 5,846 buffers per request instead of a few).
An index on (token_id, id) answers both the filter and the order, whatever the statistics.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:40:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("metadata_token_id_id_index", "metadata", ["token_id", "id"], unique=False)
    op.drop_index("metadata_token_id_index", table_name="metadata")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_index("metadata_token_id_index", "metadata", ["token_id"], unique=False)
    op.drop_index("metadata_token_id_id_index", table_name="metadata")
