"""`GET /metadata/v1/admin/dashboard`: what the operator dashboard page shows
(docs/dashboard.md), mounted with the other admin routes behind the same bearer token."""

from __future__ import annotations

from collections.abc import Callable

import redis
from flask import Response
from flask_smorest import Blueprint

from api.db import get_session
from api.encoders import json_response
from api.schemas.dashboard import DashboardSchema
from shared.reads.dashboard import read_dashboard

DASHBOARD = DashboardSchema()


def register(blp: Blueprint, broker: Callable[[], redis.Redis]) -> None:
    @blp.route("/dashboard", methods=["GET"])
    def dashboard() -> Response:
        return json_response(DASHBOARD.dump(read_dashboard(get_session(), broker())))
