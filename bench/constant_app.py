"""A WSGI app that answers every request with the same small JSON body.

`bench/run.py` serves it with the API's own gunicorn command and settings and measures it
with the same wrk settings as the API: the requests/s and latency no route can beat on that
machine at that moment, so API figures from runs on faster or slower machines compare as a
fraction of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"name":"Constant","description":"the same 64-byte body for every request."}'[:64]
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
