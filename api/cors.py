"""CORS as `@fastify/cors` with its defaults: any origin, preflights answered on every path."""

from __future__ import annotations

from flask import Flask, Response, current_app, request

ALLOWED_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE"


def init_app(app: Flask) -> None:
    app.before_request(answer_preflight)
    app.after_request(allow_any_origin)


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


def allow_any_origin(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
