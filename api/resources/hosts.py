"""`GET /metadata/v1/admin/hosts`: each metadata host's adaptive concurrency limit, with the
other admin routes behind the bearer token (docs/host-slots.md#adaptive)."""

from __future__ import annotations

from collections.abc import Callable

import redis
from flask import Response
from flask_smorest import Blueprint

from api.db import get_session
from api.encoders import json_response
from shared.reads.hosts import host_limits


def register(blp: Blueprint, client: Callable[[], redis.Redis]) -> None:
    @blp.route("/hosts", methods=["GET"])
    def hosts() -> Response:
        try:
            results = host_limits(get_session(), client())
        except redis.RedisError:
            return json_response({"error": "Redis is unreachable"}, 503)
        return json_response({"results": results})
