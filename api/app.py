"""The Flask app: `create_app(settings)` (`api.wsgi` serves it, `python -m api.serve` runs it)."""

from __future__ import annotations

from flask import Flask

from api import compression, cors, errors, fast_routes, metrics
from api.db import init_db
from api.openapi import PREFIX, make_api
from api.resources import admin, make_blueprints, refresh
from shared.config import Settings, load_settings

API_VERSION = "v2.2.1"
UNVERSIONED_PREFIX = "/metadata"


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider has it
    app.extensions["token_metadata_settings"] = settings
    init_db(app, settings)
    cors.init_app(app)
    api = make_api(app, API_VERSION)
    # The versioned prefix is documented; the unversioned one serves the same views.
    for blueprint in make_blueprints():
        api.register_blueprint(blueprint, url_prefix=PREFIX)
    for blueprint in make_blueprints("unversioned"):
        app.register_blueprint(blueprint, url_prefix=UNVERSIONED_PREFIX)
    refresh.init_app(app, settings)  # the refresh routes' quota, transactions and broker
    admin.init_app(app, settings)  # only with ADMIN_API_TOKEN; not in the OpenAPI document
    errors.init_app(app)
    metrics.init_app(app)
    fast_routes.install(app)  # the token routes' and /search's hot path, in front of Flask
    compression.install(app)  # large JSON answers gzipped, from either path
    cors.install(app)  # in front of both: every answer gets the CORS header from one place
    return app
