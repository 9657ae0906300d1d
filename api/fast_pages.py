"""Collection pages and owners' galleries on the fast path (`api.fast_routes`).

A 100-item page costs about 1.5 ms of CPU to read and join; Flask, flask-smorest and webargs
added about as much again. Taken here, as the token routes are, only when every parameter is
certainly valid: the path's principal matches its schema's pattern and the query string holds
nothing but `limit` (1 to MAX_PAGE_LIMIT, digits) and `cursor` (base64url characters, at most
MAX_CURSOR_LENGTH), each at most once. The answer comes from the function the Flask view calls
(`api.marketplace`), so a cursor that does not decode gets the same 400 either way; every
other request, `?locale=`, `?include=`, `token_ids` and `contract` filters included, goes to
Flask.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from api.caching import Answer
from api.db import RawReads
from api.marketplace import collection_page, owner_gallery
from api.schemas.marketplace import MAX_CURSOR_LENGTH, OWNER_PATTERN
from api.schemas.params import PRINCIPAL, Pattern
from shared.reads.items import ItemOptions
from shared.reads.pages import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT

COLLECTION_KINDS = ("nft", "sft")
_CONTRACT = re.compile(PRINCIPAL.body)
_OWNER_PATH = re.compile(rf"(?P<principal>{Pattern(OWNER_PATTERN).body})/nft")
_LIMIT = re.compile(r"[0-9]{1,3}")
_CURSOR = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CURSOR_LENGTH}}}")
_DEFAULTS = ItemOptions()


def page_route(
    kind: str, rest: str | None, query: str, reads: RawReads
) -> tuple[Callable[[], Answer], str] | None:
    """How to answer `/{kind}/{rest}?{query}` here (and the route's rule, without its prefix),
    or None to hand the request to Flask."""
    if rest is None:
        return None
    paging = _paging(query)
    if paging is None:
        return None
    limit, cursor = paging
    if kind in COLLECTION_KINDS and _CONTRACT.fullmatch(rest):
        answer = partial(collection_page, reads, kind, rest, limit, cursor, _DEFAULTS, None)
        return answer, f"/{kind}/<principal>"
    owner = _OWNER_PATH.fullmatch(rest) if kind == "owners" else None
    if owner is not None:
        answer = partial(owner_gallery, reads, owner["principal"], limit, cursor, _DEFAULTS, None)
        return answer, "/owners/<principal>/nft"
    return None


def _paging(query: str) -> tuple[int, str | None] | None:
    """`limit` and `cursor` of a query string that holds nothing else, valid; else None."""
    found: dict[str, str] = {}
    for part in query.split("&") if query else ():
        name, equals, value = part.partition("=")
        if not equals or name in found or name not in ("limit", "cursor"):
            return None
        found[name] = value
    limit = found.get("limit")
    if limit is not None and not (_LIMIT.fullmatch(limit) and 1 <= int(limit) <= MAX_PAGE_LIMIT):
        return None
    cursor = found.get("cursor")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        return None
    return (DEFAULT_PAGE_LIMIT if limit is None else int(limit)), cursor
