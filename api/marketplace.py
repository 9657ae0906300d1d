"""The answers of the marketplace routes: collection pages, owners' galleries, batch reads
(docs/marketplace-api.md). The views in `api.resources.marketplace` validate the request and
call these.

Postgres keeps the items ready (`shared.reads.items`) and `shared.reads.pages` stops a page at
`MAX_PAGE_BYTES`: a page never grows past about 1 MB whatever its tokens' documents hold, and
its `next_cursor` then starts at the first token left out. Here the items are only wrapped in
the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.caching import Answer, encoded_json_answer, json_answer
from api.db import RawReads
from shared.jsonio import dumps
from shared.reads.items import ItemOptions
from shared.reads.pages import (
    BadCursor,
    Page,
    Position,
    batch_items,
    collection_rows,
    collection_total,
    find_contract,
    gallery_rows,
)

FT_TOKEN_NUMBER = 1
CONTRACT_NOT_FOUND = {"error": "Contract not found"}


def collection_page(
    reads: RawReads,
    kind: str,
    principal: str,
    limit: int,
    cursor: str | None,
    options: ItemOptions,
    token_numbers: Sequence[int] | None,
) -> Answer:
    """`GET /{nft|sft}/{principal}`: 404 unless the contract is stored and of that kind."""
    after = _position(cursor, with_contract=False)
    if isinstance(after, BadCursor):
        return _bad_cursor()
    page = collection_rows(reads, principal, after, limit, options, token_numbers)
    contract = page.contract or find_contract(reads, principal)
    if contract is None or contract.token_type != kind:
        return json_answer(CONTRACT_NOT_FOUND, 404)
    total = collection_total(reads, contract.id, token_numbers)
    return encoded_json_answer(page_body(page, limit, total, with_contract=False))


def owner_gallery(
    reads: RawReads,
    owner: str,
    limit: int,
    cursor: str | None,
    options: ItemOptions,
    contracts: Sequence[str] | None,
) -> Answer:
    """`GET /owners/{principal}/nft`: what the principal holds now (no holdings: empty)."""
    after = _position(cursor, with_contract=True)
    if isinstance(after, BadCursor):
        return _bad_cursor()
    page, total = gallery_rows(reads, owner, after, limit, options, contracts)
    return encoded_json_answer(page_body(page, limit, total, with_contract=True))


def token_batch(reads: RawReads, tokens: Sequence[dict[str, Any]], options: ItemOptions) -> Answer:
    """`POST /tokens/batch`: an item per requested token, in request order; an unknown one is
    `{contract_id, token_id, error}` in its place."""
    keys = [(t["contract_id"], t.get("token_id", FT_TOKEN_NUMBER)) for t in tokens]
    items = batch_items(reads, keys, options)
    return encoded_json_answer(b'{"results":[' + items + b"]}")


def page_body(page: Page, limit: int, total: int, *, with_contract: bool) -> bytes:
    """`{limit, total, next_cursor, results}`."""
    next_cursor = None
    if page.more and page.last is not None:
        next_cursor = page.last.cursor(with_contract)
    head = dumps({"limit": limit, "total": total, "next_cursor": next_cursor})
    return head[:-1] + b',"results":[' + page.items + b"]}"


def _position(cursor: str | None, *, with_contract: bool) -> Position | BadCursor | None:
    if cursor is None:
        return None
    try:
        return Position.parse(cursor, with_contract)
    except BadCursor as exc:
        return exc


def _bad_cursor() -> Answer:
    return json_answer(
        {
            "statusCode": 400,
            "code": "FST_ERR_VALIDATION",
            "error": "Bad Request",
            "message": "querystring/cursor is not a valid cursor",
        },
        400,
    )
