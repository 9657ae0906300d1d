"""ETags and `Cache-Control` as the reference sends them (section 2.2, with fix 12).

`revalidated(etag_of)` wraps a view after its parameters are validated: `etag_of` is one cheap
query on those parameters (never a split of the URL), a matching `If-None-Match` is answered 304
before the view runs, and only a 200 gets the headers: errors are never cacheable. A view whose
own query yields the ETag (the token routes: one query instead of two) returns
`etag_response(response, etag)` under `@answers_304`, which applies the same rules after it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, request
from sqlalchemy.orm import Session

from api.db import get_session

CACHE_CONTROL = "public, no-cache, must-revalidate"

EtagOf = Callable[..., str | None]
View = Callable[..., Response]


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


def _not_modified() -> Response:
    return current_app.response_class(status=304, headers=list(NOT_MODIFIED_HEADERS))


def revalidated(etag_of: EtagOf) -> Callable[[View], View]:
    """`etag_of(session, *view_args, **view_kwargs)`: the current ETag, or None for no caching."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            session: Session = get_session()
            etag = etag_of(session, *args, **kwargs)
            if is_fresh(etag, request.headers.get("If-None-Match")):
                return _not_modified()
            response = view(*args, **kwargs)
            if etag is not None and response.status_code == 200:
                response.headers.update(cache_headers(etag))
            return response

        return wrapper

    return decorator


def etag_response(response: Response, etag: str | None) -> Response:
    """Mark a 200 built by the view with its ETag (None: not cacheable); see `answers_304`."""
    if etag is not None:
        response.headers["ETag"] = f'"{etag}"'
    return response


def answers_304(view: View) -> View:
    """For views that set their ETag with `etag_response`: 304 on a match, headers on a 200."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        response = view(*args, **kwargs)
        tag = response.headers.get("ETag")
        if tag is None or response.status_code != 200:
            response.headers.pop("ETag", None)
            return response
        if is_fresh(tag.strip('"'), request.headers.get("If-None-Match")):
            return _not_modified()
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response

    return wrapper
