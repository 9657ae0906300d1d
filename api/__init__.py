"""The REST API: `create_app(settings)` builds the Flask app (see `api.wsgi` for gunicorn)."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from api import errors
from api.db import init_db
from api.resources import nft, status
from shared.config import Settings, load_settings

API_PREFIXES = ("/metadata/v1", "/metadata")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Token Metadata API",
        API_VERSION="v2.2.1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/metadata/v1",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider has it
    app.extensions["token_metadata_settings"] = settings
    init_db(app, settings)
    api = Api(app)
    for module in (status, nft):
        # The versioned prefix is documented; the unversioned one is the same views.
        api.register_blueprint(module.make_blueprint("v1"), url_prefix=API_PREFIXES[0])
        app.register_blueprint(module.make_blueprint("unversioned"), url_prefix=API_PREFIXES[1])
    errors.init_app(app)
    return app
