"""A metadata row's attributes and properties also kept as the JSON the API answers with.

The token routes aggregated each row's `metadata_attributes` and `metadata_properties` per
request: two index scans and a json_agg per token, more than half of a 100-item page's
database time. Workers now store the answer's JSON beside the rows (`attributes_json`,
`properties_json`, NULL when there are none); rows stored before this revision are still
aggregated when read.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 18:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("metadata", sa.Column("attributes_json", postgresql.JSON(), nullable=True))
    op.add_column("metadata", sa.Column("properties_json", postgresql.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("metadata", "properties_json")
    op.drop_column("metadata", "attributes_json")
