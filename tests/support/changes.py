"""Reading the change log in tests (docs/change-feed.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.db import session_scope
from shared.models import Change, ChangeKind


@dataclass(frozen=True)
class Logged:
    id: int
    kind: ChangeKind
    contract: str
    token: int | None
    block_height: int | None
    index_block_hash: str | None
    details: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, int | None]:
        """What a test usually compares: kind, contract, token number."""
        return (self.kind.value, self.contract, self.token)


def logged(
    sessions: sessionmaker[Session], *kinds: ChangeKind, after: int = 0, contract: str | None = None
) -> list[Logged]:
    """The entries after `after` in id order, of these kinds (all when none) and contract."""
    query = select(Change).where(Change.id > after).order_by(Change.id)
    if kinds:
        query = query.where(Change.kind.in_(kinds))
    if contract is not None:
        query = query.where(Change.contract_principal == contract)
    with session_scope(sessions) as s:
        return [
            Logged(
                c.id,
                c.kind,
                c.contract_principal,
                c.token_number,
                c.block_height,
                c.index_block_hash,
                c.details,
            )
            for c in s.scalars(query)
        ]


def last_id(sessions: sessionmaker[Session]) -> int:
    entries = logged(sessions)
    return entries[-1].id if entries else 0
