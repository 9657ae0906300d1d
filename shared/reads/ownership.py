"""NFT owners and mints as the monitor keeps them (docs/chain-monitor.md#ownership): the facts
of a page of tokens, and an owner's gallery in keyset pages. Plain SQL run by a `RowSource`.

No `nft_ownership` row means not known: the token is not minted yet, or its collection's
history is not imported yet (docs/chain-monitor.md#ownership-import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.reads.tokens import RowSource

# By primary key: one probe per token of the page.
_OWNERSHIP_OF = """
    SELECT token_id, owner, burned, mint_address, mint_tx_id, mint_block_height, mint_timestamp
    FROM nft_ownership
    WHERE token_id = ANY(CAST(%(token_ids)s AS int[]))
"""

# One range of nft_ownership_owner_contract_token_index: the owner, then the rows after the
# cursor in (contract id, token number) order.
_GALLERY = """
    SELECT o.token_id, o.smart_contract_id, c.principal AS contract_principal, o.token_number
    FROM nft_ownership o
    JOIN smart_contracts c ON c.id = o.smart_contract_id
    WHERE o.owner = %(owner)s
      AND (o.smart_contract_id, o.token_number)
          > (CAST(%(after_contract)s AS int), CAST(%(after_number)s AS numeric))
    ORDER BY o.smart_contract_id, o.token_number
    LIMIT %(limit)s
"""


@dataclass(frozen=True)
class TokenOwnership:
    token_id: int
    owner: str | None  # None once burned
    burned: bool
    mint_address: str | None
    mint_tx_id: str | None
    mint_block_height: int | None
    mint_timestamp: datetime | None


@dataclass(frozen=True)
class GalleryItem:
    token_id: int
    smart_contract_id: int
    contract_principal: str
    token_number: int

    @property
    def cursor(self) -> tuple[int, int]:
        """Where the next page starts (exclusive)."""
        return self.smart_contract_id, self.token_number


def ownership_of(source: RowSource, token_ids: Sequence[int]) -> dict[int, TokenOwnership]:
    """The known owners of these tokens, by token id (absent: not known)."""
    if not token_ids:
        return {}
    rows = source.all(_OWNERSHIP_OF, {"token_ids": list(token_ids)})
    return {row.token_id: TokenOwnership(*row) for row in rows}


def owner_gallery(
    source: RowSource, owner: str, after: tuple[int, int] | None = None, limit: int = 100
) -> list[GalleryItem]:
    """The NFTs `owner` holds, by contract id then token number, after the cursor."""
    after_contract, after_number = after or (0, -1)
    rows = source.all(
        _GALLERY,
        {
            "owner": owner,
            "after_contract": after_contract,
            "after_number": after_number,
            "limit": limit,
        },
    )
    return [
        GalleryItem(
            row.token_id, row.smart_contract_id, row.contract_principal, int(row.token_number)
        )
        for row in rows
    ]
