"""CORS as `@fastify/cors` with its defaults: any origin, preflights answered on every path.

`Access-Control-Allow-Origin: *` is added by `AnyOrigin`, a WSGI middleware in front of both
the fast path and Flask, so every answer gets it from one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, request

ALLOWED_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE"
ANY_ORIGIN = ("Access-Control-Allow-Origin", "*")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def init_app(app: Flask) -> None:
    app.before_request(answer_preflight)


def install(app: Flask) -> None:
    """Put `AnyOrigin` in front of the app's WSGI callable (the outermost layer)."""
    app.wsgi_app = AnyOrigin(app.wsgi_app)  # type: ignore[method-assign]


class AnyOrigin:
    """Adds `Access-Control-Allow-Origin: *` to every answer of the app it wraps."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ANY_ORIGIN], exc_info)

        return self.app(environ, start)


def answer_preflight() -> Response | None:
    """204 with the allowed methods and the requested headers reflected; 400 if not a preflight."""
    if request.method != "OPTIONS":
        return None
    if not request.headers.get("Origin") or not request.headers.get(
        "Access-Control-Request-Method"
    ):
        return current_app.response_class(
            "Invalid Preflight Request", status=400, mimetype="text/plain"
        )
    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested:
        response.headers["Access-Control-Allow-Headers"] = requested
        response.headers["Vary"] = "Access-Control-Request-Headers"
    return response
