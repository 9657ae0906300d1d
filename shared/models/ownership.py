"""Who holds each SIP-009 token and how it was minted, kept by the chain monitor
(docs/chain-monitor.md#ownership)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, BigInteger


class NftOwnership(Base):
    """One row per NFT whose history is known; no row: not minted yet, or not imported yet.

    A table of its own rather than columns on `tokens`: a transfer or its undo rewrites a
    narrow row with two indexes instead of a wide one with ten, and never waits on a token
    job's lock on the token row.
    """

    __tablename__ = "nft_ownership"
    __table_args__ = (
        # An owner's gallery, in keyset pages: WHERE owner = ? ORDER BY contract, token number.
        Index(
            "nft_ownership_owner_contract_token_index",
            "owner",
            "smart_contract_id",
            "token_number",
            postgresql_where=text("owner IS NOT NULL"),
        ),
    )

    token_id: Mapped[int] = mapped_column(
        ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # Copies of the token's (never changing) contract and number, for the gallery index.
    smart_contract_id: Mapped[int] = mapped_column(Integer)
    token_number: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(Text)  # NULL once burned
    burned: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # The latest mint: a token burned and minted again shows its second mint.
    mint_address: Mapped[str | None] = mapped_column(Text)
    mint_tx_id: Mapped[str | None] = mapped_column(Text)
    mint_block_height: Mapped[int | None] = mapped_column(Integer)
    mint_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
