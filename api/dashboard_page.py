"""The operator dashboard page (docs/dashboard.md): static HTML, script and styles from
`api/static/dashboard/`, served by the API with nothing loaded from elsewhere.

The page itself is public; each data request it makes carries the admin bearer token, which
the page keeps in the browser's sessionStorage. Its Content-Security-Policy allows scripts,
styles and requests to this origin only; images may come from any http(s) host, as a token's
cached image may live on a CDN or a bucket.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, abort, send_from_directory

ASSETS_DIR = Path(__file__).parent / "static" / "dashboard"
PAGE = "index.html"
# name -> content type: the files the page loads, and nothing else
ASSETS = {
    "dashboard.css": "text/css",
    "main.js": "text/javascript",
    "api.js": "text/javascript",
    "dom.js": "text/javascript",
    "sections.js": "text/javascript",
    "chart.js": "text/javascript",
    "inspector.js": "text/javascript",
}
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: http: https:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def install(app: Flask, prefix: str) -> None:
    """`{prefix}/dashboard` and its files under `{prefix}/dashboard/assets/`."""
    app.add_url_rule(f"{prefix}/dashboard", "dashboard_page", dashboard_page, methods=["GET"])
    app.add_url_rule(
        f"{prefix}/dashboard/assets/<name>", "dashboard_asset", dashboard_asset, methods=["GET"]
    )


def dashboard_page() -> Response:
    return _file(PAGE, "text/html")


def dashboard_asset(name: str) -> Response:
    mimetype = ASSETS.get(name)
    if mimetype is None:
        abort(404)
    return _file(name, mimetype)


def _file(name: str, mimetype: str) -> Response:
    # Revalidated on each load (no-cache + ETag): a new release's page never runs old script.
    response = send_from_directory(ASSETS_DIR, name, mimetype=mimetype, conditional=True, etag=True)
    response.cache_control.no_cache = True
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response
