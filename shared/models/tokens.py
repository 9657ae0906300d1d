"""Tokens, their fetched metadata and their SIP-019 update notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, BigInteger, pg_enum
from shared.models.enums import TokenType, TokenUpdateMode


class Token(Base):
    __tablename__ = "tokens"
    __table_args__ = (
        UniqueConstraint(
            "smart_contract_id", "token_number", name="tokens_smart_contract_id_token_number_unique"
        ),
        Index("tokens_smart_contract_id_index", "smart_contract_id"),
        Index(
            "tokens_coalesce_updated_at_created_at_index", text("COALESCE(updated_at, created_at)")
        ),
        Index("tokens_name_index", "name"),
        Index("tokens_symbol_index", "symbol"),
        Index("tokens_type_index", "type"),
        Index(
            "tokens_type_lower_name_index",
            "type",
            text("LOWER(name)"),
            postgresql_where=text("type = 'ft'"),
        ),
        Index(
            "tokens_type_lower_symbol_index",
            "type",
            text("LOWER(symbol)"),
            postgresql_where=text("type = 'ft'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    smart_contract_id: Mapped[int] = mapped_column(
        ForeignKey("smart_contracts.id", ondelete="CASCADE")
    )
    type: Mapped[TokenType] = mapped_column(pg_enum(TokenType, "token_type"))
    token_number: Mapped[int] = mapped_column(BigInteger)
    uri: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    symbol: Mapped[str | None] = mapped_column(Text)
    decimals: Mapped[int | None] = mapped_column(Integer)
    total_supply: Mapped[int | None] = mapped_column(BigInteger)
    block_height: Mapped[int] = mapped_column(Integer)
    index_block_hash: Mapped[str] = mapped_column(Text)
    tx_id: Mapped[str] = mapped_column(Text)
    tx_index: Mapped[int] = mapped_column(Integer)
    event_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # NULL until the token has been processed once.
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When a client last asked for a refresh (docs/marketplace-api.md#refresh).
    refresh_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Metadata(Base):
    __tablename__ = "metadata"
    __table_args__ = (
        UniqueConstraint("token_id", "l10n_locale", name="metadata_token_id_l10n_locale_unique"),
        # (token_id, id): a token's rows in id order, the API's `ORDER BY id LIMIT 1` per token.
        Index("metadata_token_id_id_index", "token_id", "id"),
        Index("metadata_l10n_locale_index", "l10n_locale"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"))
    sip: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    l10n_locale: Mapped[str | None] = mapped_column(Text)
    l10n_uri: Mapped[str | None] = mapped_column(Text)
    l10n_default: Mapped[bool | None] = mapped_column(Boolean)
    description: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(Text)
    cached_image: Mapped[str | None] = mapped_column(Text)
    cached_thumbnail_image: Mapped[str | None] = mapped_column(Text)
    # The document this row was built from, and its display fields (docs/marketplace-api.md).
    raw: Mapped[Any | None] = mapped_column(JSONB(none_as_null=True))
    normalized: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    # The answer's `attributes` and `properties` as stored JSON text (NULL: none, or a row
    # stored before they were kept: the read aggregates the tables then).
    attributes_json: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    properties_json: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))


class MetadataAttribute(Base):
    __tablename__ = "metadata_attributes"
    __table_args__ = (Index("metadata_attributes_metadata_id_index", "metadata_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metadata_id: Mapped[int] = mapped_column(ForeignKey("metadata.id", ondelete="CASCADE"))
    trait_type: Mapped[str] = mapped_column(Text)
    value: Mapped[Any] = mapped_column(JSONB(none_as_null=False))
    display_type: Mapped[str | None] = mapped_column(Text)


class MetadataProperty(Base):
    __tablename__ = "metadata_properties"
    __table_args__ = (Index("metadata_properties_metadata_id_index", "metadata_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metadata_id: Mapped[int] = mapped_column(ForeignKey("metadata.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    value: Mapped[Any] = mapped_column(JSONB(none_as_null=False))


class UpdateNotification(Base):
    """One SIP-019 notification per affected token; the latest one sets the update mode."""

    __tablename__ = "update_notifications"
    __table_args__ = (
        UniqueConstraint(
            "token_id",
            "block_height",
            "tx_index",
            "event_index",
            name="update_notifications_token_block_tx_event_unique",
        ),
        Index(
            "update_notifications_dynamic_index",
            "update_mode",
            "token_id",
            text("block_height DESC"),
            text("tx_index DESC"),
            text("event_index DESC"),
            postgresql_where=text("update_mode = 'dynamic'"),
        ),
    )

    # Hiro's table has no primary key; ours gets a surrogate one for the ORM.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"))
    update_mode: Mapped[TokenUpdateMode] = mapped_column(
        pg_enum(TokenUpdateMode, "token_update_mode"), server_default="standard"
    )
    ttl: Mapped[int | None] = mapped_column(BigInteger)
    block_height: Mapped[int] = mapped_column(Integer)
    index_block_hash: Mapped[str] = mapped_column(Text)
    tx_id: Mapped[str] = mapped_column(Text)
    tx_index: Mapped[int] = mapped_column(Integer)
    event_index: Mapped[int | None] = mapped_column(Integer)
