"""Swagger UI's script and styles, served by the API itself: the docs page loads nothing from
the internet.

The files are swagger-ui-dist's, vendored in `api/static/swagger-ui/` (`make vendor-swagger-ui`
replaces them with another release). Their URL names the release, so they are sent as immutable
for a year: a new release is a new URL. Only the files the docs page loads are served.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, Response, abort, send_from_directory

ASSETS_DIR = Path(__file__).parent / "static" / "swagger-ui"
VERSION: str = json.loads((ASSETS_DIR / "package.json").read_text())["version"]
# name -> content type: what flask-smorest's swagger_ui.html template loads
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
}
MAX_AGE_S = 365 * 24 * 3600


def install(app: Flask, prefix: str) -> str:
    """Route the assets under `prefix`; the base URL of the files (for OPENAPI_SWAGGER_UI_URL)."""
    base = f"{prefix}/swagger-ui/{VERSION}/"
    app.add_url_rule(f"{base}<name>", "swagger_ui_asset", swagger_ui_asset, methods=["GET"])
    return base


def swagger_ui_asset(name: str) -> Response:
    mimetype = ASSETS.get(name)
    if mimetype is None:
        abort(404)
    response = send_from_directory(
        ASSETS_DIR, name, mimetype=mimetype, conditional=True, etag=True, max_age=MAX_AGE_S
    )
    response.cache_control.immutable = True
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
