"""`POST /tokens/batch` on the fast path (`api.fast_routes`).

Validating a 100-token body through flask-smorest and marshmallow cost about 1.5 ms, a third
of a batch. Taken here only when the body is certainly valid: no query string, a JSON content
type and length, and exactly `{"tokens": [...]}` with 1 to MAX_BATCH_TOKENS objects of a
`contract_id` matching its pattern and an optional `token_id` the schema's `TokenId` field
accepts (its own code decides). The answer comes from `api.marketplace.token_batch`, the
Flask view's. Anything else, every malformed body included, goes to Flask with the body it
sent, so validation messages have one source.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
from marshmallow import ValidationError

from api.caching import Answer
from api.db import RawReads
from api.marketplace import token_batch
from api.schemas.marketplace import MAX_BATCH_TOKENS, TokenId
from api.schemas.params import PRINCIPAL
from shared.reads.items import ItemOptions

BATCH_RULE = "/tokens/batch"
# A hundred entries of the longest principal and id take about 17 KB; Flask reads the rest.
MAX_BODY_BYTES = 64 * 1024
_TOKEN_ID = TokenId()
_KEYS = frozenset(("contract_id", "token_id"))


def batch_route(environ: dict[str, Any], reads: RawReads) -> Callable[[], Answer] | None:
    """How to answer this batch here, or None to hand it to Flask (which then reads the same
    body: `wsgi.input` is replaced by what was read)."""
    if environ.get("QUERY_STRING") or not _json(environ.get("CONTENT_TYPE", "")):
        return None
    length = environ.get("CONTENT_LENGTH", "")
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return None
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    tokens = _tokens(body)
    if tokens is None:
        return None
    return partial(token_batch, reads, tokens, ItemOptions())


def _json(content_type: str) -> bool:
    mimetype, _, parameters = content_type.partition(";")
    return mimetype.strip().lower() == "application/json" and parameters.strip() in (
        "",
        "charset=utf-8",
        "charset=UTF-8",
    )


def _tokens(body: bytes) -> list[dict[str, Any]] | None:
    """The requested tokens as the schema loads them, or None unless certainly valid."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.keys() != {"tokens"}:
        return None
    entries = data["tokens"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH_TOKENS:
        return None
    tokens = []
    principals: set[str] = set()  # checked already: a batch names few collections
    for entry in entries:
        if not isinstance(entry, dict) or "contract_id" not in entry or not entry.keys() <= _KEYS:
            return None
        principal = entry["contract_id"]
        if not isinstance(principal, str):  # a list or an object cannot even be looked up
            return None
        try:
            if principal not in principals:
                principals.add(PRINCIPAL(principal))
            token = {"contract_id": principal}
            if "token_id" in entry:
                # The field's own check, without marshmallow's wrapping (it has no validators)
                token["token_id"] = _TOKEN_ID._deserialize(entry["token_id"], None, None)
        except ValidationError:
            return None
        tokens.append(token)
    return tokens
