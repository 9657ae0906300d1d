"""The ownership reads the routes will use: a page's owners by token id, and an owner's
gallery in keyset pages served by one index range (docs/chain-monitor.md#ownership)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text
from support.builders import add_contract, add_token

from api.db import RawReads
from shared.db import session_scope
from shared.models import NftOwnership
from shared.reads.ownership import _GALLERY, owner_gallery, ownership_of

ALICE = "SP2PABAF9FTAJYNFZH93XENAJ8FVY99RRM50D2JG9"
BOB = "SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE"
MINTED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def reads(settings) -> Iterator[RawReads]:  # type: ignore[no-untyped-def]
    engine = create_engine(settings.database_url)
    source = RawReads(engine)
    yield source
    source.close()
    engine.dispose()


def own(session: Any, token: Any, owner: str | None, **mint: Any) -> None:
    session.execute(
        insert(NftOwnership).values(
            token_id=token.id,
            smart_contract_id=token.smart_contract_id,
            token_number=token.token_number,
            owner=owner,
            burned=owner is None,
            **mint,
        )
    )


@pytest.fixture
def collections(sessions) -> list[list[Any]]:  # type: ignore[no-untyped-def]
    """Two collections of four tokens: ALICE holds 1-3 of each, BOB the 4th, the second's 2nd
    is burned."""
    with session_scope(sessions) as s:
        tokens = []
        for _ in range(2):
            contract = add_contract(s)
            tokens.append([add_token(s, contract, n) for n in range(1, 5)])
        for kept in tokens:
            for token in kept[:3]:
                own(s, token, ALICE, mint_address=ALICE, mint_timestamp=MINTED_AT)
            own(s, kept[3], BOB, mint_address=ALICE)
        s.execute(
            text("UPDATE nft_ownership SET owner = NULL, burned = true WHERE token_id = :id"),
            {"id": tokens[1][1].id},
        )
        return tokens


def test_a_page_reads_the_owners_it_knows(reads, collections) -> None:
    first = collections[0]
    owners = ownership_of(reads, [t.id for t in first] + [collections[1][1].id, 999_999])
    assert {token_id: o.owner for token_id, o in owners.items()} == {
        first[0].id: ALICE,
        first[1].id: ALICE,
        first[2].id: ALICE,
        first[3].id: BOB,
        collections[1][1].id: None,
    }
    assert owners[collections[1][1].id].burned is True
    assert owners[first[0].id].mint_timestamp == MINTED_AT
    assert ownership_of(reads, []) == {}


def test_a_gallery_pages_by_contract_then_token_number(reads, collections) -> None:
    first = owner_gallery(reads, ALICE, limit=3)
    assert [(g.contract_principal, g.token_number) for g in first] == [
        (first[0].contract_principal, 1),
        (first[0].contract_principal, 2),
        (first[0].contract_principal, 3),
    ]
    rest = owner_gallery(reads, ALICE, after=first[-1].cursor, limit=3)
    assert [g.token_number for g in rest] == [1, 3]  # the burned 2 is nobody's
    assert {g.smart_contract_id for g in rest} == {collections[1][0].smart_contract_id}
    assert owner_gallery(reads, ALICE, after=rest[-1].cursor) == []
    assert [g.token_number for g in owner_gallery(reads, BOB)] == [4, 4]


def test_a_gallery_page_is_one_index_range_without_a_sort(sessions, collections) -> None:
    with session_scope(sessions) as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        sql = _GALLERY.replace("%(owner)s", f"'{ALICE}'").replace("%(after_contract)s", "1")
        sql = sql.replace("%(after_number)s", "2").replace("%(limit)s", "100")
        plan = "\n".join(s.scalars(text("EXPLAIN " + sql)))
    assert "nft_ownership_owner_contract_token_index" in plan
    assert "ROW(smart_contract_id, token_number) > ROW(" in plan  # the cursor bounds the range
    assert "Sort" not in plan
