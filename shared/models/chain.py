"""How far into the chain this index has read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base


class ChainTip(Base):
    """The single-row checkpoint: the last block whose contracts and events were processed."""

    __tablename__ = "chain_tip"
    __table_args__ = (CheckConstraint("id", name="one_row"),)

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    block_height: Mapped[int] = mapped_column(Integer, server_default="1")
    # Ours: NULL until the first import; lets a re-org be noticed at the checkpoint.
    index_block_hash: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
