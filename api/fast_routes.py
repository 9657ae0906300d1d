"""The hot read routes without Flask: a WSGI middleware in front of the app.

`GET /nft/{principal}/{token_id}`, `/sft/{principal}/{token_id}`, `/ft/{principal}` and
`/search` are most of an index's traffic; collection pages and galleries (`api.fast_pages`)
and batch reads (`api.fast_batch`) the heaviest of the rest. Through Flask, flask-smorest
and webargs a token request cost about 2.5 ms of CPU; here it is one query on a bare psycopg
connection. The routes are the declarations of `api.routes`, and the answers come from their
`answer` method, the one the Flask views call: same body, same caching, same error bodies.

Only requests whose parameters are certainly valid are taken: a token GET without a query
string (`?locale=` goes to Flask) whose path parameters match the route's schema fields
(`TokenRoute.path_regex`); a search whose query string is 1 to 50 `contract` identifiers
that match the schema's pattern. Anything else, including every bad request, is passed to
Flask unchanged, so validation messages have one source. Requests are counted in the same
Prometheus metrics as Flask's.
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

from api.caching import Answer
from api.db import RAW_READS, RawReads
from api.fast_batch import BATCH_RULE, batch_route
from api.fast_pages import page_route
from api.metrics import REQUEST_RECORDER, RequestRecorder
from api.routes import SEARCH, TOKEN_ROUTES, TokenRoute
from api.schemas.params import IDENTIFIER, SEARCH_MAX_IDENTIFIERS

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Routed = tuple[Callable[[], Answer], str]  # how to answer, and the rule for the metrics

_PATH = re.compile(r"(?P<prefix>/metadata(?:/v1)?)/(?P<kind>[a-z]+)(?:/(?P<rest>.*))?")
# kind -> the route, its path regex and its rule with each prefix (the metrics' label)
_ROUTES: dict[str, tuple[TokenRoute, re.Pattern[str], dict[str, str]]] = {
    route.kind: (
        route,
        route.path_regex(),
        {prefix: prefix + route.rule for prefix in ("/metadata/v1", "/metadata")},
    )
    for route in TOKEN_ROUTES
}
_IDENTIFIER = re.compile(IDENTIFIER.body)
# Token ids and numbers of more digits go to Flask, which refuses or reads them its own way.
MAX_DIGITS = 80


def install(app: Flask) -> None:
    """Put the fast path in front of the app's WSGI callable (after every extension is set)."""
    app.wsgi_app = FastRoutes(  # type: ignore[method-assign]
        app.wsgi_app,
        app.extensions[RAW_READS],
        app.extensions[REQUEST_RECORDER],
    )


class FastRoutes:
    def __init__(self, app: WsgiApp, reads: RawReads, record: RequestRecorder) -> None:
        self.app = app
        self.reads = reads
        self.record = record

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        started = default_timer()
        if method == "GET":
            routed = self._route(environ)
        elif method == "POST":
            routed = self._route_post(environ)
        else:
            routed = None
        if routed is None:
            return self.app(environ, start_response)
        make_answer, rule = routed
        try:
            status, headers, body = make_answer()
        except Exception:  # Flask answers it again and logs the 500 if it fails the same way
            log.exception("fast route failed; handing the request to Flask")
            return self.app(environ, start_response)
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
        self.record(method, rule, status, max(default_timer() - started, 0.0))
        return [body]

    def _route_post(self, environ: dict[str, Any]) -> Routed | None:
        """A batch read here, or None to hand the request (and its body) to Flask."""
        match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or (match["kind"], match["rest"]) != ("tokens", "batch"):
            return None
        batch = batch_route(environ, self.reads)
        return None if batch is None else (batch, match["prefix"] + BATCH_RULE)

    def _route(self, environ: dict[str, Any]) -> Routed | None:
        """How to answer this request here, or None to hand it to Flask."""
        match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        prefix, kind, rest = match["prefix"], match["kind"], match["rest"]
        query = environ.get("QUERY_STRING", "")
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if kind == "search" and rest is None:
            identifiers = _search_identifiers(query)
            if identifiers is None:
                return None
            search = partial(SEARCH.answer, self.reads, identifiers, None, if_none_match)
            return search, prefix + SEARCH.rule
        page = page_route(kind, rest, query, self.reads)
        if page is not None:
            answer, rule = page
            return answer, prefix + rule
        declared = _ROUTES.get(kind)
        if declared is None or query or rest is None:
            return None
        route, regex, rules = declared
        params = regex.fullmatch(rest)
        token_id = None if params is None else params.groupdict().get("token_id")
        if params is None or not _short(token_id):
            return None
        number = None if token_id is None else int(token_id)
        token = partial(route.answer, self.reads, params["principal"], number, None, if_none_match)
        return token, rules[prefix]


def _short(number: str | None) -> bool:
    """A token id or number the fast path takes: absent, or at most MAX_DIGITS digits."""
    return number is None or len(number.lstrip("-")) <= MAX_DIGITS


def _search_identifiers(query: str) -> list[str] | None:
    """The identifiers of a query string of `contract` parameters only, all valid; else None."""
    parts = query.split("&")
    if len(parts) > SEARCH_MAX_IDENTIFIERS:
        return None
    identifiers = []
    for part in parts:
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:  # escaped: decoded as Werkzeug decodes it
            name, value = unquote_plus(name), unquote_plus(value)
        if name != "contract" or _IDENTIFIER.fullmatch(value) is None:
            return None
        if not _short(value.partition(":")[2]):
            return None
        identifiers.append(value)
    return identifiers
