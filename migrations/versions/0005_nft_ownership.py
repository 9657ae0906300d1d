"""NFT ownership and mint facts, kept by the chain monitor (docs/chain-monitor.md#ownership).

`nft_ownership` holds each SIP-009 token's owner, whether it is burned, and its mint; the
partial index on (owner, smart_contract_id, token_number) serves an owner's gallery in keyset
pages. `chain_ownership_changes` keeps the rows as they were before each remembered block
changed them, and `chain_ownership_imports` the collections whose owners are read from their
history; both go with the remembered blocks. Every SIP-009 contract already stored is queued
for that import, so an index that is already following gets its owners too.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:05:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mint_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("mint_address", sa.Text(), nullable=True),
        sa.Column("mint_tx_id", sa.Text(), nullable=True),
        sa.Column("mint_block_height", sa.Integer(), nullable=True),
        sa.Column("mint_timestamp", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nft_ownership",
        sa.Column("token_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("smart_contract_id", sa.Integer(), nullable=False),
        sa.Column("token_number", sa.Numeric(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("burned", sa.Boolean(), server_default="false", nullable=False),
        *_mint_columns(),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["tokens.id"],
            name=op.f("nft_ownership_token_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("nft_ownership_pkey")),
    )
    op.create_index(
        "nft_ownership_owner_contract_token_index",
        "nft_ownership",
        ["owner", "smart_contract_id", "token_number"],
        unique=False,
        postgresql_where=sa.text("owner IS NOT NULL"),
    )
    op.create_table(
        "chain_ownership_changes",
        sa.Column("block_height", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("existed", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("burned", sa.Boolean(), nullable=True),
        *_mint_columns(),
        sa.ForeignKeyConstraint(
            ["block_height"],
            ["chain_blocks.block_height"],
            name=op.f("chain_ownership_changes_block_height_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["tokens.id"],
            name=op.f("chain_ownership_changes_token_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "block_height", "token_id", name=op.f("chain_ownership_changes_pkey")
        ),
    )
    op.create_index(
        "chain_ownership_changes_token_id_index",
        "chain_ownership_changes",
        ["token_id"],
        unique=False,
    )
    op.create_table(
        "chain_ownership_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("smart_contract_id", sa.Integer(), nullable=False),
        sa.Column("block_height", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["block_height"],
            ["chain_blocks.block_height"],
            name=op.f("chain_ownership_imports_block_height_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["smart_contract_id"],
            ["smart_contracts.id"],
            name=op.f("chain_ownership_imports_smart_contract_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("chain_ownership_imports_pkey")),
    )
    op.create_index(
        "chain_ownership_imports_block_height_index",
        "chain_ownership_imports",
        ["block_height"],
        unique=False,
    )
    op.create_index(
        "chain_ownership_imports_smart_contract_id_index",
        "chain_ownership_imports",
        ["smart_contract_id"],
        unique=False,
    )
    op.execute(
        "INSERT INTO chain_ownership_imports (smart_contract_id)"
        " SELECT id FROM smart_contracts WHERE sip = 'sip-009' ORDER BY id"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(
        "chain_ownership_imports_smart_contract_id_index", table_name="chain_ownership_imports"
    )
    op.drop_index(
        "chain_ownership_imports_block_height_index", table_name="chain_ownership_imports"
    )
    op.drop_table("chain_ownership_imports")
    op.drop_index("chain_ownership_changes_token_id_index", table_name="chain_ownership_changes")
    op.drop_table("chain_ownership_changes")
    op.drop_index("nft_ownership_owner_contract_token_index", table_name="nft_ownership")
    op.drop_table("nft_ownership")
