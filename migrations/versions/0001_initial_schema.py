"""Initial schema: the tables of Hiro's Token Metadata API, with our additions.

Ours (docs/reference-differences.md#schema-additions): smart_contracts.sender_address,
jobs.locked_until and jobs.last_error, chain_tip.index_block_hash and chain_tip.updated_at,
a surrogate primary key on update_notifications.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 05:47:18.476364

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    postgresql.ENUM("sip-009", "sip-010", "sip-013", name="sip_number").create(op.get_bind())
    postgresql.ENUM("ft", "nft", "sft", name="token_type").create(op.get_bind())
    postgresql.ENUM("pending", "queued", "done", "failed", "invalid", name="job_status").create(
        op.get_bind()
    )
    postgresql.ENUM("standard", "frozen", "dynamic", name="token_update_mode").create(op.get_bind())
    op.create_table(
        "chain_tip",
        sa.Column("id", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("block_height", sa.Integer(), server_default="1", nullable=False),
        sa.Column("index_block_hash", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id", name=op.f("chain_tip_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("chain_tip_pkey")),
    )
    op.create_table(
        "rate_limited_hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("retry_after", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("rate_limited_hosts_pkey")),
        sa.UniqueConstraint("hostname", name=op.f("rate_limited_hosts_hostname_unique")),
    )
    op.create_index(
        "rate_limited_hosts_hostname_index", "rate_limited_hosts", ["hostname"], unique=False
    )
    op.create_table(
        "smart_contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("sip", postgresql.ENUM(name="sip_number", create_type=False), nullable=False),
        sa.Column("token_count", sa.Numeric(), nullable=True),
        sa.Column("fungible_token_name", sa.Text(), nullable=True),
        sa.Column("non_fungible_token_name", sa.Text(), nullable=True),
        sa.Column("sender_address", sa.Text(), nullable=True),
        sa.Column("block_height", sa.Integer(), nullable=False),
        sa.Column("index_block_hash", sa.Text(), nullable=False),
        sa.Column("tx_id", sa.Text(), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("smart_contracts_pkey")),
        sa.UniqueConstraint("principal", name=op.f("smart_contracts_principal_unique")),
    )
    op.create_index(
        "smart_contracts_block_height_index", "smart_contracts", ["block_height"], unique=False
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("smart_contract_id", sa.Integer(), nullable=False),
        sa.Column("type", postgresql.ENUM(name="token_type", create_type=False), nullable=False),
        sa.Column("token_number", sa.Numeric(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("symbol", sa.Text(), nullable=True),
        sa.Column("decimals", sa.Integer(), nullable=True),
        sa.Column("total_supply", sa.Numeric(), nullable=True),
        sa.Column("block_height", sa.Integer(), nullable=False),
        sa.Column("index_block_hash", sa.Text(), nullable=False),
        sa.Column("tx_id", sa.Text(), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["smart_contract_id"],
            ["smart_contracts.id"],
            name=op.f("tokens_smart_contract_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("tokens_pkey")),
        sa.UniqueConstraint(
            "smart_contract_id", "token_number", name="tokens_smart_contract_id_token_number_unique"
        ),
    )
    op.create_index(
        "tokens_coalesce_updated_at_created_at_index",
        "tokens",
        [sa.literal_column("COALESCE(updated_at, created_at)")],
        unique=False,
    )
    op.create_index("tokens_name_index", "tokens", ["name"], unique=False)
    op.create_index("tokens_smart_contract_id_index", "tokens", ["smart_contract_id"], unique=False)
    op.create_index("tokens_symbol_index", "tokens", ["symbol"], unique=False)
    op.create_index("tokens_type_index", "tokens", ["type"], unique=False)
    op.create_index(
        "tokens_type_lower_name_index",
        "tokens",
        ["type", sa.literal_column("LOWER(name)")],
        unique=False,
        postgresql_where=sa.text("type = 'ft'"),
    )
    op.create_index(
        "tokens_type_lower_symbol_index",
        "tokens",
        ["type", sa.literal_column("LOWER(symbol)")],
        unique=False,
        postgresql_where=sa.text("type = 'ft'"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("smart_contract_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            postgresql.ENUM(name="job_status", create_type=False),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalid_reason", sa.Integer(), nullable=True),
        sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "NUM_NONNULLS(token_id, smart_contract_id) = 1", name=op.f("jobs_job_type_check")
        ),
        sa.ForeignKeyConstraint(
            ["smart_contract_id"],
            ["smart_contracts.id"],
            name=op.f("jobs_smart_contract_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("jobs_token_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("jobs_pkey")),
    )
    op.create_index("jobs_smart_contract_id_index", "jobs", ["smart_contract_id"], unique=False)
    op.create_index(
        "jobs_smart_contract_id_unique",
        "jobs",
        ["smart_contract_id"],
        unique=True,
        postgresql_where=sa.text("token_id IS NULL"),
    )
    op.create_index("jobs_status_all_index", "jobs", ["status"], unique=False)
    op.create_index(
        "jobs_status_pending_index",
        "jobs",
        ["status"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "jobs_status_updated_at_queued_index",
        "jobs",
        ["status", "updated_at"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index("jobs_token_id_index", "jobs", ["token_id"], unique=False)
    op.create_index(
        "jobs_token_id_unique",
        "jobs",
        ["token_id"],
        unique=True,
        postgresql_where=sa.text("smart_contract_id IS NULL"),
    )
    op.create_table(
        "metadata",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("sip", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("l10n_locale", sa.Text(), nullable=True),
        sa.Column("l10n_uri", sa.Text(), nullable=True),
        sa.Column("l10n_default", sa.Boolean(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("image", sa.Text(), nullable=True),
        sa.Column("cached_image", sa.Text(), nullable=True),
        sa.Column("cached_thumbnail_image", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("metadata_token_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("metadata_pkey")),
        sa.UniqueConstraint("token_id", "l10n_locale", name="metadata_token_id_l10n_locale_unique"),
    )
    op.create_index("metadata_l10n_locale_index", "metadata", ["l10n_locale"], unique=False)
    op.create_index("metadata_token_id_index", "metadata", ["token_id"], unique=False)
    op.create_table(
        "update_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column(
            "update_mode",
            postgresql.ENUM(name="token_update_mode", create_type=False),
            server_default="standard",
            nullable=False,
        ),
        sa.Column("ttl", sa.Numeric(), nullable=True),
        sa.Column("block_height", sa.Integer(), nullable=False),
        sa.Column("index_block_hash", sa.Text(), nullable=False),
        sa.Column("tx_id", sa.Text(), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["tokens.id"],
            name=op.f("update_notifications_token_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("update_notifications_pkey")),
        sa.UniqueConstraint(
            "token_id",
            "block_height",
            "tx_index",
            "event_index",
            name="update_notifications_token_block_tx_event_unique",
        ),
    )
    op.create_index(
        "update_notifications_dynamic_index",
        "update_notifications",
        [
            "update_mode",
            "token_id",
            sa.literal_column("block_height DESC"),
            sa.literal_column("tx_index DESC"),
            sa.literal_column("event_index DESC"),
        ],
        unique=False,
        postgresql_where=sa.text("update_mode = 'dynamic'"),
    )
    op.create_table(
        "metadata_attributes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metadata_id", sa.Integer(), nullable=False),
        sa.Column("trait_type", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("display_type", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["metadata_id"],
            ["metadata.id"],
            name=op.f("metadata_attributes_metadata_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("metadata_attributes_pkey")),
    )
    op.create_index(
        "metadata_attributes_metadata_id_index",
        "metadata_attributes",
        ["metadata_id"],
        unique=False,
    )
    op.create_table(
        "metadata_properties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metadata_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["metadata_id"],
            ["metadata.id"],
            name=op.f("metadata_properties_metadata_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("metadata_properties_pkey")),
    )
    op.create_index(
        "metadata_properties_metadata_id_index",
        "metadata_properties",
        ["metadata_id"],
        unique=False,
    )
    op.execute("INSERT INTO chain_tip (id, block_height) VALUES (true, 1)")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("metadata_properties_metadata_id_index", table_name="metadata_properties")
    op.drop_table("metadata_properties")
    op.drop_index("metadata_attributes_metadata_id_index", table_name="metadata_attributes")
    op.drop_table("metadata_attributes")
    op.drop_index(
        "update_notifications_dynamic_index",
        table_name="update_notifications",
        postgresql_where=sa.text("update_mode = 'dynamic'"),
    )
    op.drop_table("update_notifications")
    op.drop_index("metadata_token_id_index", table_name="metadata")
    op.drop_index("metadata_l10n_locale_index", table_name="metadata")
    op.drop_table("metadata")
    op.drop_index(
        "jobs_token_id_unique",
        table_name="jobs",
        postgresql_where=sa.text("smart_contract_id IS NULL"),
    )
    op.drop_index("jobs_token_id_index", table_name="jobs")
    op.drop_index(
        "jobs_status_updated_at_queued_index",
        table_name="jobs",
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.drop_index(
        "jobs_status_pending_index",
        table_name="jobs",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("jobs_status_all_index", table_name="jobs")
    op.drop_index(
        "jobs_smart_contract_id_unique",
        table_name="jobs",
        postgresql_where=sa.text("token_id IS NULL"),
    )
    op.drop_index("jobs_smart_contract_id_index", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(
        "tokens_type_lower_symbol_index",
        table_name="tokens",
        postgresql_where=sa.text("type = 'ft'"),
    )
    op.drop_index(
        "tokens_type_lower_name_index", table_name="tokens", postgresql_where=sa.text("type = 'ft'")
    )
    op.drop_index("tokens_type_index", table_name="tokens")
    op.drop_index("tokens_symbol_index", table_name="tokens")
    op.drop_index("tokens_smart_contract_id_index", table_name="tokens")
    op.drop_index("tokens_name_index", table_name="tokens")
    op.drop_index("tokens_coalesce_updated_at_created_at_index", table_name="tokens")
    op.drop_table("tokens")
    op.drop_index("smart_contracts_block_height_index", table_name="smart_contracts")
    op.drop_table("smart_contracts")
    op.drop_index("rate_limited_hosts_hostname_index", table_name="rate_limited_hosts")
    op.drop_table("rate_limited_hosts")
    op.drop_table("chain_tip")
    postgresql.ENUM(name="sip_number").drop(op.get_bind())
    postgresql.ENUM(name="token_type").drop(op.get_bind())
    postgresql.ENUM(name="job_status").drop(op.get_bind())
    postgresql.ENUM(name="token_update_mode").drop(op.get_bind())
