"""`POST /{nft,sft}/{principal}/{token_id}/refresh` and `POST /ft/{principal}/refresh`: a
holder's "fetch this token again" (docs/marketplace-api.md#refresh).

The client's hourly quota is counted in Redis (`shared.client_quota`), the token's cooldown
and its job's re-pending are one transaction (`shared.refresh`), and the message is sent after
the commit. Path parameters are the detail routes' own schemas (`api.routes`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, Response, current_app, request
from flask_smorest import Blueprint
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session, sessionmaker

from api.broker import JobSender
from api.client_address import client_address, quota_key
from api.db import ENGINE
from api.encoders import json_response
from api.routes import TOKEN_ROUTES, TokenRoute
from api.schemas.marketplace import (
    RETRY_AFTER_HEADER,
    RefreshQueuedSchema,
    TokenFrozenSchema,
    TooManyRefreshesSchema,
)
from api.schemas.responses import NOT_FOUND_RESPONSE
from shared.client_quota import ClientQuota
from shared.config import IpNetwork, Settings
from shared.db import make_session_factory, session_scope
from shared.queues import JobMessage
from shared.refresh import RefreshTooSoon, TokenFrozen, request_refresh

log = logging.getLogger(__name__)

REFRESH = "token_metadata_refresh"
TOO_MANY = "Too many refresh requests"
_BAD_REQUEST: dict[str, Any] = {"error_status_code": 400}


@dataclass
class RefreshServices:
    cooldown: timedelta
    trusted_proxies: tuple[IpNetwork, ...]
    # Transactions of their own: the API's request sessions autocommit every statement.
    sessions: sessionmaker[Session]
    quota: ClientQuota
    enqueue: JobSender

    def close(self) -> None:
        self.quota.close()
        self.enqueue.close()


def init_app(app: Flask, settings: Settings) -> None:
    """Connections are opened on first use; a malformed TRUSTED_PROXIES fails here."""
    app.extensions[REFRESH] = RefreshServices(
        cooldown=timedelta(seconds=settings.refresh_cooldown_s),
        trusted_proxies=settings.trusted_proxy_networks(),
        sessions=make_session_factory(app.extensions[ENGINE]),
        quota=ClientQuota.connect(settings.redis_url, settings.refresh_client_limit),
        enqueue=JobSender(settings.redis_url),
    )


def services() -> RefreshServices:
    refresh: RefreshServices = current_app.extensions[REFRESH]
    return refresh


def register(blp: Blueprint) -> None:
    for route in TOKEN_ROUTES:
        _register_refresh(blp, route)


def refresh_token(kind: str, principal: str, token_number: int) -> Response:
    """202 once the token is due to be fetched again; 429 past the client's quota or within
    the token's cooldown, 409 for a frozen token, 404 (`api.errors`) for an unknown contract
    or token."""
    refresh = services()
    address = client_address(
        request.remote_addr, request.headers.get("X-Forwarded-For"), refresh.trusted_proxies
    )
    allowance = refresh.quota.take(quota_key(address))
    if not allowance.allowed:
        limit = refresh.quota.limit
        message = f"More than {limit} refresh requests from this client in an hour"
        return _too_many(message, allowance.retry_after_s)
    try:
        with session_scope(refresh.sessions) as session:
            messages = request_refresh(session, kind, principal, token_number, refresh.cooldown)
    except RefreshTooSoon as exc:
        seconds = int(refresh.cooldown.total_seconds())
        message = f"This token was refreshed or asked for less than {seconds} s ago"
        return _too_many(message, exc.retry_after_s)
    except TokenFrozen:
        message = "A SIP-019 notification froze this token's metadata; it is not refreshed"
        return json_response({"error": "Token is frozen", "message": message}, 409)
    _send(refresh.enqueue, messages)
    log.info(
        "refresh of %s %s #%s by %s: %d sent", kind, principal, token_number, address, len(messages)
    )
    return json_response({"status": "queued"}, 202)


def _register_refresh(blp: Blueprint, route: TokenRoute) -> None:
    def view(principal: str, token_id: int | None = None) -> Response:
        number = route.token_number if token_id is None else token_id
        if number is None:
            raise TypeError(f"/{route.kind}: a token id or a fixed token number is needed")
        return refresh_token(route.kind, principal, number)

    view.__name__ = view.__qualname__ = f"refresh_{route.kind}_token"
    for wrap in (
        blp.doc(
            operationId=f"refresh{route.kind.capitalize()}Token",
            summary=f"Refresh {route.summary}",
            description="Fetches the token's metadata again: at most once per cooldown per "
            "token, and a limited number of requests per client an hour.",
        ),
        blp.alt_response(
            429, schema=TooManyRefreshesSchema, headers=RETRY_AFTER_HEADER, description=TOO_MANY
        ),
        blp.alt_response(409, schema=TokenFrozenSchema, description="Token is frozen"),
        blp.alt_response(404, schema=NOT_FOUND_RESPONSE, description="Contract or token not found"),
        blp.response(202, RefreshQueuedSchema, description="The token will be fetched again"),
        blp.arguments(route.path(), location="path", as_kwargs=True, **_BAD_REQUEST),
        blp.route(f"{route.rule}/refresh", methods=["POST"]),
    ):
        view = wrap(view)


def _too_many(message: str, retry_after_s: int) -> Response:
    response = json_response({"error": TOO_MANY, "message": message}, 429)
    response.headers["Retry-After"] = str(retry_after_s)
    # A browser script may read it across origins.
    response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def _send(enqueue: JobSender, messages: list[JobMessage]) -> None:
    """After the commit. If the broker is down the job stays queued in Postgres, and beat's
    dispatcher sends it again once it notices the lost message (docs/job-engine.md#recovery)."""
    try:
        enqueue(messages)
    except BrokerError:
        log.exception("could not send %d refresh messages; the dispatcher will", len(messages))
