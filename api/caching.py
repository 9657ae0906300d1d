"""ETags and `Cache-Control` as Hiro's API sends them (docs/reference-differences.md#etags).

Every cacheable answer is built by `cacheable_answer` (a 304 when the client's If-None-Match
holds the ETag, else a 200 with ETag and Cache-Control), for both the fast path and the Flask
views; errors are built by `json_answer` and are never cacheable. An ETag is always read with
(or in the same statement as) the body it describes, on the same server
(docs/replicas-and-poolers.md#etags-and-counts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app

from shared.jsonio import dumps

CACHE_CONTROL = "public, no-cache, must-revalidate"

EtagOf = Callable[..., str | None]
View = Callable[..., Response]
Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body
JSON = ("Content-Type", "application/json")


def if_none_match(header: str | None) -> set[str]:
    """The reference's permissive parsing: a comma list, quotes and `W/` stripped."""
    if not header:
        return set()
    tags = set()
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.add(tag.strip('"'))
    return tags


# The reference repeats only Cache-Control on a 304.
NOT_MODIFIED_HEADERS = (("Cache-Control", CACHE_CONTROL),)


def is_fresh(etag: str | None, header: str | None) -> bool:
    """The answer is a 304: the client's If-None-Match holds `etag` (None: not cacheable)."""
    return etag is not None and etag in if_none_match(header)


def cache_headers(etag: str) -> list[tuple[str, str]]:
    """What a cacheable 200 carries (api.fast_routes sends the same)."""
    return [("ETag", f'"{etag}"'), ("Cache-Control", CACHE_CONTROL)]


def json_answer(body: Any, status: int = 200) -> Answer:
    """A JSON answer that no cache keeps (errors, and 200s without an ETag)."""
    return encoded_json_answer(dumps(body), status)


def encoded_json_answer(data: bytes, status: int = 200) -> Answer:
    """`json_answer` for a body already encoded."""
    return status, [JSON, ("Content-Length", str(len(data)))], data


def not_modified() -> Answer:
    return 304, list(NOT_MODIFIED_HEADERS), b""


def cacheable_answer(body: Any, etag: str | None, if_none_match: str | None) -> Answer:
    """304 if the client holds `etag`, else a 200 with ETag and Cache-Control (None: neither)."""
    if is_fresh(etag, if_none_match):
        return not_modified()
    status, headers, data = json_answer(body)
    if etag is not None:
        headers += cache_headers(etag)
    return status, headers, data


def to_response(answer: Answer) -> Response:
    """An answer as a Flask response (for the views; the fast path sends it as it is)."""
    status, headers, data = answer
    return current_app.response_class(data, status=status, headers=headers)
