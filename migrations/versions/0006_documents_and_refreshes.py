"""Fetched documents kept beside their metadata rows; self-service refresh requests.

`metadata.raw` is the document a row was built from, as parsed JSON, and
`metadata.normalized` its display fields under one set of names
(docs/marketplace-api.md#normalized); both NULL for rows stored before this revision until
their token is fetched again. `tokens.refresh_requested_at` is when a client last asked for a
refresh, so that every API process applies the same cooldown
(docs/marketplace-api.md#refresh).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("metadata", sa.Column("raw", postgresql.JSONB(), nullable=True))
    op.add_column("metadata", sa.Column("normalized", postgresql.JSONB(), nullable=True))
    op.add_column(
        "tokens", sa.Column("refresh_requested_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("tokens", "refresh_requested_at")
    op.drop_column("metadata", "normalized")
    op.drop_column("metadata", "raw")
