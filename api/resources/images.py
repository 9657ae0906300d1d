"""`GET /images/<key>`: the image cache's files when it stores them locally.

Files, not API resources: the route is left out of the OpenAPI document, and what it sends
is always one of our own re-encoded PNGs, never bytes a metadata host chose.
"""

from __future__ import annotations

from flask import Blueprint as FlaskBlueprint
from flask import Response, abort, current_app, send_file
from flask_smorest import Blueprint

from shared.config import Settings
from shared.images.storage import IMAGE_MAX_AGE_S, PNG, LocalStorage


def register(blp: Blueprint) -> None:
    # Flask's own add_url_rule: flask-smorest's would document the route.
    FlaskBlueprint.add_url_rule(blp, "/images/<path:key>", "get_cached_image", get_cached_image)


def get_cached_image(key: str) -> Response:
    settings: Settings = current_app.extensions["token_metadata_settings"]
    if settings.image_cache_storage != "local":
        abort(404)
    path = LocalStorage(settings.image_cache_local_dir).find(key)
    if path is None:
        abort(404)
    response = send_file(path, mimetype=PNG, conditional=True, etag=True, max_age=IMAGE_MAX_AGE_S)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
