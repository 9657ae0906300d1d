"""The single-token routes without Flask: a WSGI middleware in front of the app.

`GET /nft/{principal}/{token_id}`, `/sft/{principal}/{token_id}` and `/ft/{principal}` are most
of an index's traffic. Through Flask, flask-smorest and webargs one costs about 2.5 ms of CPU;
here it is the token query on a bare psycopg connection and a body built by the same encoders
(`api.encoders`), with the same answers: 200 with ETag and Cache-Control, 304 on a matching
If-None-Match, and the reference's 404/422 error bodies (`api.errors.token_error_body`).

Only requests whose parameters are certainly valid are taken: a GET without a query string
(`?locale=` goes to Flask) whose principal and token id match the documented patterns. Anything
else, including every bad request, is passed to Flask unchanged, so validation messages have
one source. Requests are counted in the same Prometheus metrics as Flask's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from timeit import default_timer
from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from api.caching import CACHE_CONTROL, if_none_match
from api.db import RAW_READS, RawReads
from api.encoders import dumps, ft_body, nft_body, sft_body
from api.errors import token_error_body
from api.metrics import REQUEST_RECORDER, RequestRecorder
from api.resources.ft import FT_TOKEN_NUMBER
from api.schemas.params import CONTRACT_PRINCIPAL_PATTERN
from shared.services.token_reads import TokenLookupError, TokenView, get_token

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_PRINCIPAL = CONTRACT_PRINCIPAL_PATTERN.removeprefix("^").removesuffix("$")
# Token ids as the Integer field reads them; longer ones go to Flask (it rejects them).
_ROUTE = re.compile(
    rf"(?P<prefix>/metadata(?:/v1)?)/(?:(?P<kind>nft|sft)/(?P<principal>{_PRINCIPAL})"
    rf"/(?P<token_id>-?[0-9]{{1,80}})|ft/(?P<ft>{_PRINCIPAL}))"
)
_BODIES: dict[str, Callable[[TokenView], dict[str, Any]]] = {
    "nft": nft_body,
    "sft": sft_body,
    "ft": ft_body,
}
_JSON = ("Content-Type", "application/json")
_ANY_ORIGIN = ("Access-Control-Allow-Origin", "*")  # as api.cors adds to every response


def install(app: Flask) -> None:
    """Put the fast path in front of the app's WSGI callable (after every extension is set)."""
    app.wsgi_app = FastTokenRoutes(  # type: ignore[method-assign]
        app.wsgi_app, app.extensions[RAW_READS], app.extensions[REQUEST_RECORDER]
    )


class FastTokenRoutes:
    def __init__(self, app: WsgiApp, reads: RawReads, record: RequestRecorder) -> None:
        self.app = app
        self.reads = reads
        self.record = record

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
            return self.app(environ, start_response)
        match = _ROUTE.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return self.app(environ, start_response)
        started = default_timer()
        try:
            status, headers, body, rule = self._answer(match, environ)
        except Exception:  # Flask answers it again and logs the 500 if it fails the same way
            log.exception("fast token route failed; handing the request to Flask")
            return self.app(environ, start_response)
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
        self.record("GET", rule, status, max(default_timer() - started, 0.0))
        return [body]

    def _answer(
        self, match: re.Match[str], environ: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes, str]:
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
        if token.etag is None:
            return 200, *_json(_BODIES[kind](token)), rule
        if token.etag in if_none_match(environ.get("HTTP_IF_NONE_MATCH")):
            return 304, [("Cache-Control", CACHE_CONTROL), _ANY_ORIGIN], b"", rule
        headers, body = _json(_BODIES[kind](token))
        headers[2:2] = [("ETag", f'"{token.etag}"'), ("Cache-Control", CACHE_CONTROL)]
        return 200, headers, body, rule


def _json(body: Any) -> tuple[list[tuple[str, str]], bytes]:
    data = dumps(body).encode()
    return [_JSON, ("Content-Length", str(len(data))), _ANY_ORIGIN], data
