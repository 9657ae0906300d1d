"""How far into the chain this index has read, and what re-org detection needs to remember."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, BigInteger
from shared.models.tokens import Token, UpdateNotification


class ChainTip(Base):
    """The single-row checkpoint: the last block whose contracts and events were processed."""

    __tablename__ = "chain_tip"
    __table_args__ = (CheckConstraint("id", name="one_row"),)

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    block_height: Mapped[int] = mapped_column(Integer, server_default="1")
    # Ours: NULL until the first import; lets a re-org be noticed at the checkpoint.
    index_block_hash: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Since when the Stacks API database has had no row at all for the checkpoint's block (a
    # re-synced or restored database, still behind); NULL while it knows the block.
    checkpoint_unknown_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProcessedBlock(Base):
    """A block the monitor applied, by height: compared with the Stacks API database's
    canonical blocks to find a re-org's fork point. Only the most recent ones are kept."""

    __tablename__ = "chain_blocks"

    block_height: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index_block_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AppliedSupplyDelta(Base):
    """An FT mint/burn delta as applied to a token's supply, so a re-org reverses exactly
    what was applied (not what the orphaned rows say later)."""

    __tablename__ = "chain_supply_deltas"
    __table_args__ = (
        Index("chain_supply_deltas_block_height_index", "block_height"),
        Index("chain_supply_deltas_token_id_index", "token_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_height: Mapped[int] = mapped_column(
        ForeignKey("chain_blocks.block_height", ondelete="CASCADE")
    )
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(BigInteger)


class AppliedOwnershipChange(Base):
    """A token's `nft_ownership` row as it was before a block changed it (`existed` false: it
    had none), so a re-org restores exactly the state at the fork point."""

    __tablename__ = "chain_ownership_changes"
    __table_args__ = (Index("chain_ownership_changes_token_id_index", "token_id"),)

    block_height: Mapped[int] = mapped_column(
        ForeignKey("chain_blocks.block_height", ondelete="CASCADE"), primary_key=True
    )
    token_id: Mapped[int] = mapped_column(
        ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True
    )
    existed: Mapped[bool] = mapped_column(Boolean)
    owner: Mapped[str | None] = mapped_column(Text)
    burned: Mapped[bool | None] = mapped_column(Boolean)
    mint_address: Mapped[str | None] = mapped_column(Text)
    mint_tx_id: Mapped[str | None] = mapped_column(Text)
    mint_block_height: Mapped[int | None] = mapped_column(Integer)
    mint_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OwnershipImport(Base):
    """An NFT collection whose owners are to be read from its history (pending: no block yet),
    or were, as of `block_height` (a re-org below that height makes it pending again)."""

    __tablename__ = "chain_ownership_imports"
    __table_args__ = (
        Index("chain_ownership_imports_block_height_index", "block_height"),
        Index("chain_ownership_imports_smart_contract_id_index", "smart_contract_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    smart_contract_id: Mapped[int] = mapped_column(
        ForeignKey("smart_contracts.id", ondelete="CASCADE")
    )
    block_height: Mapped[int | None] = mapped_column(
        ForeignKey("chain_blocks.block_height", ondelete="CASCADE")
    )


# A re-org deletes the rows its orphaned blocks created, found by height (then hash).
Index("tokens_block_height_index", Token.block_height)
Index("update_notifications_block_height_index", UpdateNotification.block_height)
