"""The change log: what changed in the index, in commit order (docs/change-feed.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger as Int64
from sqlalchemy import Boolean, CheckConstraint, DateTime, Identity, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, BigInteger, pg_enum
from shared.models.enums import ChangeKind


class Change(Base):
    """One entry. No foreign keys: an entry outlives the contract or token it names (a
    re-org deletes them), so it names them by principal and token number."""

    __tablename__ = "changes"
    __table_args__ = (
        # The feed filtered by contract: one range of the index alone per contract, in id
        # order (the kind included for the kind filter).
        Index(
            "changes_contract_principal_id_index",
            "contract_principal",
            "id",
            postgresql_include=["kind"],
        ),
        # A re-org finds the entries of its orphaned blocks by height, then hash.
        Index(
            "changes_block_height_index",
            "block_height",
            postgresql_where=text("block_height IS NOT NULL"),
        ),
    )

    # Allocated under the change-log lock, so ids are in commit order
    # (docs/change-feed.md#ordering).
    id: Mapped[int] = mapped_column(Int64, Identity(), primary_key=True)
    # When the entry was written: just before its transaction committed.
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    kind: Mapped[ChangeKind] = mapped_column(pg_enum(ChangeKind, "change_kind"))
    contract_principal: Mapped[str] = mapped_column(Text)
    token_number: Mapped[int | None] = mapped_column(BigInteger)  # NULL: the contract itself
    block_height: Mapped[int | None] = mapped_column(Integer)
    index_block_hash: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class ChangesHorizon(Base):
    """The single row: every entry with an id up to `pruned_through` has been pruned, so a
    consumer behind it may have missed some (docs/change-feed.md#retention)."""

    __tablename__ = "changes_horizon"
    __table_args__ = (CheckConstraint("id", name="one_row"),)

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    pruned_through: Mapped[int] = mapped_column(Int64, server_default="0")
