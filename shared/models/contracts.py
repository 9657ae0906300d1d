"""Token contracts discovered on chain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, BigInteger, pg_enum
from shared.models.enums import Sip


class SmartContract(Base):
    __tablename__ = "smart_contracts"
    __table_args__ = (Index("smart_contracts_block_height_index", "block_height"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal: Mapped[str] = mapped_column(Text, unique=True)
    sip: Mapped[Sip] = mapped_column(pg_enum(Sip, "sip_number"))
    token_count: Mapped[int | None] = mapped_column(BigInteger)
    fungible_token_name: Mapped[str | None] = mapped_column(Text)
    non_fungible_token_name: Mapped[str | None] = mapped_column(Text)
    sender_address: Mapped[str | None] = mapped_column(Text)
    block_height: Mapped[int] = mapped_column(Integer)
    index_block_hash: Mapped[str] = mapped_column(Text)
    tx_id: Mapped[str] = mapped_column(Text)
    tx_index: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
