"""The hot read routes without Flask: a WSGI middleware in front of the app.

`GET /nft/{principal}/{token_id}`, `/sft/{principal}/{token_id}`, `/ft/{principal}` and
`/search` are most of an index's traffic. Through Flask, flask-smorest and webargs a token
request cost about 2.5 ms of CPU; here it is one query on a bare psycopg connection and a body
built by the same encoders (`api.encoders`), with the same answers: 200 with ETag and
Cache-Control, 304 on a matching If-None-Match, and the reference's 404/422 error bodies
(`api.errors.token_error_body`).

Only requests whose parameters are certainly valid are taken: a token GET without a query
string (`?locale=` goes to Flask) whose principal and token id match the documented patterns;
a search whose query string is 1 to 50 `contract` identifiers that match theirs. Anything else,
including every bad request, is passed to Flask unchanged, so validation messages have one
source. Requests are counted in the same Prometheus metrics as Flask's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from functools import partial
from timeit import default_timer
from typing import Any
from urllib.parse import unquote_plus

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from api.caching import NOT_MODIFIED_HEADERS, cache_headers, is_fresh
from api.db import RAW_READS, RawReads
from api.encoders import dumps, ft_body, nft_body, search_body, sft_body
from api.errors import token_error_body
from api.metrics import REQUEST_RECORDER, RequestRecorder
from api.resources.ft import FT_TOKEN_NUMBER
from api.schemas.params import (
    CONTRACT_IDENTIFIER_PATTERN,
    CONTRACT_PRINCIPAL_PATTERN,
    SEARCH_MAX_IDENTIFIERS,
)
from shared.services.search import TokenKey, search_tokens
from shared.services.token_reads import TokenLookupError, TokenView, get_token

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Answer = tuple[int, list[tuple[str, str]], bytes, str]  # status, headers, body, metrics route

_PRINCIPAL = CONTRACT_PRINCIPAL_PATTERN.removeprefix("^").removesuffix("$")
# Token ids as the Integer field reads them; longer ones go to Flask (it rejects them).
_ROUTE = re.compile(
    rf"(?P<prefix>/metadata(?:/v1)?)/(?:(?P<kind>nft|sft)/(?P<principal>{_PRINCIPAL})"
    rf"/(?P<token_id>-?[0-9]{{1,80}})|ft/(?P<ft>{_PRINCIPAL}))"
)
_SEARCH_ROUTE = re.compile(r"(?P<prefix>/metadata(?:/v1)?)/search")
# As api.schemas.params.Pattern reads it: `\d` means ASCII digits; 80 of them at most here.
_IDENTIFIER = re.compile(CONTRACT_IDENTIFIER_PATTERN[1:-1].replace(r"(:\d+)?", r"(:[0-9]{1,80})?"))
_BODIES: dict[str, Callable[[TokenView], dict[str, Any]]] = {
    "nft": nft_body,
    "sft": sft_body,
    "ft": ft_body,
}
_JSON = ("Content-Type", "application/json")
_ANY_ORIGIN = ("Access-Control-Allow-Origin", "*")  # as api.cors adds to every response


def install(app: Flask) -> None:
    """Put the fast path in front of the app's WSGI callable (after every extension is set)."""
    app.wsgi_app = FastRoutes(  # type: ignore[method-assign]
        app.wsgi_app, app.extensions[RAW_READS], app.extensions[REQUEST_RECORDER]
    )


class FastRoutes:
    def __init__(self, app: WsgiApp, reads: RawReads, record: RequestRecorder) -> None:
        self.app = app
        self.reads = reads
        self.record = record

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        started = default_timer()
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        answer: Callable[[], Answer] | None = None
        if not query and (match := _ROUTE.fullmatch(path)):
            answer = partial(self._token, match, environ)
        elif (match := _SEARCH_ROUTE.fullmatch(path)) and (keys := _search_keys(query)):
            answer = partial(self._search, match["prefix"], keys, environ)
        if answer is None:
            return self.app(environ, start_response)
        try:
            status, headers, body, rule = answer()
        except Exception:  # Flask answers it again and logs the 500 if it fails the same way
            log.exception("fast route failed; handing the request to Flask")
            return self.app(environ, start_response)
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
        self.record("GET", rule, status, max(default_timer() - started, 0.0))
        return [body]

    def _search(self, prefix: str, keys: list[TokenKey], environ: dict[str, Any]) -> Answer:
        found = search_tokens(self.reads, keys)
        return (*_cacheable(search_body(found.hits), found.etag, environ), f"{prefix}/search")

    def _token(self, match: re.Match[str], environ: dict[str, Any]) -> Answer:
        prefix, kind = match["prefix"], match["kind"]
        if kind is None:
            kind, principal, number = "ft", match["ft"], FT_TOKEN_NUMBER
            rule = f"{prefix}/ft/<principal>"
        else:
            principal, number = match["principal"], int(match["token_id"])
            rule = f"{prefix}/{kind}/<principal>/<token_id>"
        try:
            token = get_token(self.reads, principal, number)
        except TokenLookupError as exc:
            error, status = token_error_body(exc)
            return status, *_json(error), rule
        return (*_cacheable(_BODIES[kind](token), token.etag, environ), rule)


def _search_keys(query: str) -> list[TokenKey] | None:
    """The identifiers of a query string of `contract` parameters only, all valid; else None."""
    parts = query.split("&")
    if len(parts) > SEARCH_MAX_IDENTIFIERS:
        return None
    keys = []
    for part in parts:
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:  # escaped: decoded as Werkzeug decodes it
            name, value = unquote_plus(name), unquote_plus(value)
        if name != "contract" or _IDENTIFIER.fullmatch(value) is None:
            return None
        keys.append(TokenKey.parse(value))
    return keys


def _cacheable(
    body: Any, etag: str | None, environ: dict[str, Any]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """A 200 with its ETag and Cache-Control, or a 304 if the client has that ETag already: the
    rules of `api.caching.answers_304`."""
    if is_fresh(etag, environ.get("HTTP_IF_NONE_MATCH")):
        return 304, [*NOT_MODIFIED_HEADERS, _ANY_ORIGIN], b""
    headers, data = _json(body)
    if etag is not None:
        headers[2:2] = cache_headers(etag)
    return 200, headers, data


def _json(body: Any) -> tuple[list[tuple[str, str]], bytes]:
    data = dumps(body)
    return [_JSON, ("Content-Length", str(len(data))), _ANY_ORIGIN], data
