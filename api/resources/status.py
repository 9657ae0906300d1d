"""`GET /` under both prefixes: the service's status.

The ETag is the chain tip's height (as Hiro's API sends it) and the body's `chain_tip` is the
same row, read once: with DATABASE_READ_URL the two cannot come from different points of a
lagging replica's replay (docs/replicas-and-poolers.md#etags-and-counts).
"""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from api.caching import cache_headers, is_fresh, not_modified, to_response
from api.db import get_counts_cache, get_session
from api.encoders import json_response
from api.schemas.responses import ApiStatusResponseSchema
from api.version import server_version
from shared.reads.status import read_chain_tip, service_status


def register(blp: Blueprint) -> None:
    @blp.route("/", strict_slashes=False)
    @blp.response(200, ApiStatusResponseSchema, description="Default Response")
    @blp.doc(
        operationId="getApiStatus",
        summary="API Status",
        description="Displays the status of the API",
    )
    def get_api_status() -> Response:
        session = get_session()
        tip = read_chain_tip(session)
        etag = str(tip.block_height)
        if is_fresh(etag, request.headers.get("If-None-Match")):
            return to_response(not_modified())
        status = service_status(session, get_counts_cache(), tip)
        response = json_response({"server_version": server_version(), "status": "ready", **status})
        response.headers.update(cache_headers(etag))
        return response
