"""Webhook subscriptions, admin routes under `/metadata/v1/admin/webhooks`
(docs/webhooks.md#subscriptions): mounted with the other admin routes, behind the same bearer
token, and like them left out of the public OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint
from sqlalchemy.orm import Session, sessionmaker

from api.encoders import json_response
from api.schemas.webhooks import WebhookBodySchema
from shared.db import session_scope
from shared.webhooks import subscriptions

log = logging.getLogger(__name__)

_BODY: dict[str, Any] = {"location": "json", "error_status_code": 400}
_MAX_ID = 2**63 - 1
NOT_FOUND = "Webhook subscription not found"

Sessions = Callable[[], sessionmaker[Session]]


def register(blp: Blueprint, sessions: Sessions) -> None:
    @blp.route("/webhooks", methods=["POST"])
    @blp.arguments(WebhookBodySchema(), **_BODY)
    def create_webhook(body: dict[str, Any]) -> Response:
        with session_scope(sessions()) as session:
            created = subscriptions.create_subscription(
                session,
                body["url"],
                body["secret"],
                body.get("contracts"),
                body.get("kinds"),
                body.get("after"),
            )
        log.info("admin webhook %s created for %s", created["id"], created["url"])
        return json_response(created, 201)

    @blp.route("/webhooks", methods=["GET"])
    def list_webhooks() -> Response:
        with session_scope(sessions()) as session:
            return json_response({"results": subscriptions.list_subscriptions(session)})

    @blp.route("/webhooks/<int:subscription_id>", methods=["GET"])
    def get_webhook(subscription_id: int) -> Response:
        with session_scope(sessions()) as session:
            return _found(_known(subscription_id, subscriptions.get_subscription, session))

    @blp.route("/webhooks/<int:subscription_id>/pause", methods=["POST"])
    def pause_webhook(subscription_id: int) -> Response:
        with session_scope(sessions()) as session:
            paused = _known(subscription_id, subscriptions.pause_subscription, session)
        log.info("admin webhook %s paused", subscription_id)
        return _found(paused)

    @blp.route("/webhooks/<int:subscription_id>/resume", methods=["POST"])
    def resume_webhook(subscription_id: int) -> Response:
        with session_scope(sessions()) as session:
            resumed = _known(subscription_id, subscriptions.resume_subscription, session)
        log.info("admin webhook %s resumed", subscription_id)
        return _found(resumed)

    @blp.route("/webhooks/<int:subscription_id>", methods=["DELETE"])
    def delete_webhook(subscription_id: int) -> Response:
        with session_scope(sessions()) as session:
            deleted = subscription_id <= _MAX_ID and subscriptions.delete_subscription(
                session, subscription_id
            )
        if not deleted:
            return json_response({"error": NOT_FOUND}, 404)
        log.info("admin webhook %s deleted", subscription_id)
        response = current_app.response_class(status=204)
        del response.headers["Content-Type"]
        return response

    @blp.route("/webhooks/<int:subscription_id>/deliveries", methods=["GET"])
    def webhook_deliveries(subscription_id: int) -> Response:
        with session_scope(sessions()) as session:
            if _known(subscription_id, subscriptions.get_subscription, session) is None:
                return json_response({"error": NOT_FOUND}, 404)
            recent = subscriptions.recent_deliveries(session, subscription_id)
        return json_response({"results": recent})


def _known(
    subscription_id: int,
    action: Callable[[Session, int], dict[str, Any] | None],
    session: Session,
) -> dict[str, Any] | None:
    return action(session, subscription_id) if subscription_id <= _MAX_ID else None


def _found(subscription: dict[str, Any] | None) -> Response:
    if subscription is None:
        return json_response({"error": NOT_FOUND}, 404)
    return json_response(subscription)
