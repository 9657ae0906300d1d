"""`GET /` under both prefixes: the service's status."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from api.caching import revalidated
from api.db import get_counts_cache, get_session
from api.encoders import json_response
from api.schemas.responses import ApiStatusResponseSchema
from api.version import server_version
from shared.reads.status import chain_tip_etag, service_status


def _etag(session: Any) -> str:
    return chain_tip_etag(session)


def register(blp: Blueprint) -> None:
    @blp.route("/", strict_slashes=False)
    @blp.response(200, ApiStatusResponseSchema, description="Default Response")
    @blp.doc(
        operationId="getApiStatus",
        summary="API Status",
        description="Displays the status of the API",
    )
    @revalidated(_etag)
    def get_api_status() -> Response:
        status = service_status(get_session(), get_counts_cache())
        return json_response({"server_version": server_version(), "status": "ready", **status})
