"""`GET /metadata/v1/`: the service's status."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from api.db import get_session
from api.schemas.responses import ApiStatusResponseSchema
from api.version import server_version
from shared.services.status import service_status


def make_blueprint(suffix: str) -> Blueprint:
    blp = Blueprint(f"status_{suffix}", __name__, description="Service status endpoints")

    @blp.route("/", strict_slashes=False)
    @blp.response(200, ApiStatusResponseSchema)
    @blp.doc(operationId="getApiStatus", summary="API Status", tags=["Status"])
    def get_status() -> dict[str, Any]:
        """Displays the status of the API."""
        status = service_status(get_session())
        chain_tip = status.pop("chain_tip")
        return {
            "server_version": server_version(),
            "status": "ready",
            "chain_tip": chain_tip if "index_block_hash" in chain_tip else None,
            **status,
        }

    return blp
