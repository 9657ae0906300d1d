"""Admin routes under `/metadata/v1/admin/`, behind a bearer token
(docs/reference-differences.md#admin-routes).

They exist only when ADMIN_API_TOKEN is set, are left out of the public OpenAPI document
(operators use them, API clients do not) and answer under both prefixes, as every route
does; the unversioned one is the reference's own admin prefix, `/metadata/admin`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, Response, current_app, request
from flask_smorest import Blueprint
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session, sessionmaker

from api import dashboard_page
from api.broker import JobSender
from api.db import ENGINE, get_session, read_primary
from api.encoders import json_response
from api.openapi import PREFIX
from api.resources import dashboard, hosts, webhooks
from api.schemas.admin import ContractBodySchema, ContractTokensBodySchema
from api.schemas.params import path_schema, principal_field
from shared.admin import (
    ContractNotFound,
    contract_id_of,
    import_contract_now,
    refresh_tokens,
    retry_failed_jobs,
)
from shared.chain.contract_import import ContractImportError
from shared.config import Settings
from shared.db import make_engine, make_session_factory, session_scope
from shared.queues import JobMessage
from shared.reads.progress import (
    ContractProgress,
    Progress,
    contract_progress,
    index_progress,
)
from shared.stacks.api_db import StacksApiDatabase

log = logging.getLogger(__name__)

ADMIN = "token_metadata_admin"
PREFIXES = {"admin": f"{PREFIX}/admin", "admin_unversioned": "/metadata/admin"}
_BODY: dict[str, Any] = {"location": "json", "error_status_code": 400}
ProgressPathSchema = path_schema(
    "ProgressPathSchema",
    principal_field("Contract Principal", "A token contract", "SP000000000000000000002Q6VF78.pox"),
    with_token_id=False,
)


class AdminRefusal(Exception):
    """An admin request the service cannot act on; the message is the 422 body's `error`."""


@dataclass
class AdminServices:
    token_digest: bytes
    settings: Settings
    # Transactions of their own: the API's request sessions autocommit every statement.
    sessions: sessionmaker[Session]
    enqueue: JobSender
    chain: StacksApiDatabase | None
    # The dashboard's reads of the queue lengths; a page load must not hang on Redis.
    broker: redis.Redis

    def close(self) -> None:
        self.enqueue.close()
        self.broker.close()
        if self.chain is not None:
            self.chain.engine.dispose()


def init_app(app: Flask, settings: Settings) -> None:
    """Mount the admin routes and the dashboard page, only when ADMIN_API_TOKEN is set (else
    they are 404s)."""
    if not settings.admin_api_token:
        return
    chain = None
    if settings.stacks_api_database_url:
        engine = make_engine(
            settings.stacks_api_database_url,
            pool_size=1,
            application_name="tm-api-admin",
            transaction_pooled=settings.transaction_pooled,
        )
        chain = StacksApiDatabase(engine)
    app.extensions[ADMIN] = AdminServices(
        token_digest=_digest(settings.admin_api_token.encode("utf-8", "surrogateescape")),
        settings=settings,
        sessions=make_session_factory(app.extensions[ENGINE]),
        enqueue=JobSender(settings.redis_url),
        chain=chain,
        broker=redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2),
    )
    for name, prefix in PREFIXES.items():
        blp = Blueprint(name, __name__)
        register(blp)
        app.register_blueprint(blp, url_prefix=prefix)
        read_primary(app, name)
    dashboard_page.install(app, PREFIX)  # the page that shows what GET /admin/dashboard reads


def services() -> AdminServices:
    admin: AdminServices = current_app.extensions[ADMIN]
    return admin


def register(blp: Blueprint) -> None:
    blp.before_request(require_bearer_token)
    blp.after_request(never_cached)
    blp.register_error_handler(AdminRefusal, _refused)
    blp.register_error_handler(ContractImportError, _refused)
    blp.register_error_handler(ContractNotFound, lambda _: _refused("Contract not found"))
    webhooks.register(blp, lambda: services().sessions)
    dashboard.register(blp, lambda: services().broker)
    hosts.register(blp, lambda: services().broker)

    @blp.route("/refresh-token", methods=["POST"])
    @blp.arguments(ContractTokensBodySchema(), **_BODY)
    def refresh_token(body: dict[str, Any]) -> Response:
        with session_scope(services().sessions) as session:
            messages = refresh_tokens(session, body["contract_id"], body["token_ids"])
        _send(messages)
        log.info("admin refresh-token %s: %d jobs queued", body["contract_id"], len(messages))
        return _empty()

    @blp.route("/retry-failed", methods=["POST"])
    def retry_failed() -> Response:
        with session_scope(services().sessions) as session:
            count = retry_failed_jobs(session)
        log.info("admin retry-failed: %d failed or invalid jobs pending again", count)
        return _empty()

    @blp.route("/cache-images", methods=["POST"])
    @blp.arguments(ContractTokensBodySchema(), **_BODY)
    def cache_images(body: dict[str, Any]) -> Response:
        if not services().settings.image_cache_processor_enabled:
            raise AdminRefusal("Image cache processor is not enabled")
        # Imported when used: the image cache is an optional feature.
        from shared.images.jobs import reset_image_jobs

        with session_scope(services().sessions) as session:
            contract_id = contract_id_of(session, body["contract_id"])
            count = reset_image_jobs(session, contract_id, body["token_ids"])
        log.info("admin cache-images %s: %s image jobs pending", body["contract_id"], count)
        return _empty()

    @blp.route("/import-contract", methods=["POST"])
    @blp.arguments(ContractBodySchema(), **_BODY)
    def import_contract(body: dict[str, Any]) -> Response:
        chain = services().chain
        if chain is None:
            raise AdminRefusal("Stacks API database is not configured")
        with session_scope(services().sessions) as session:
            messages = import_contract_now(session, chain, body["contract_id"])
        _send(messages)
        log.info("admin import-contract %s: %d jobs queued", body["contract_id"], len(messages))
        return _empty()

    @blp.route("/progress", methods=["GET"])
    def progress() -> Response:
        return json_response(_progress_body(index_progress(get_session())))

    @blp.route("/progress/<principal>", methods=["GET"])
    @blp.arguments(ProgressPathSchema(), location="path", as_kwargs=True, error_status_code=400)
    def progress_of_contract(principal: str) -> Response:
        figures = contract_progress(get_session(), principal)
        if figures is None:
            return json_response({"error": "Contract not found"}, 404)
        return json_response(_contract_progress_body(figures))


def require_bearer_token() -> Response | None:
    """`Authorization: Bearer <token>`, compared in constant time; the token is never logged."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        if hmac.compare_digest(_digest(_as_sent(presented.strip())), services().token_digest):
            return None
        reason = "wrong token"
    else:
        reason = "no bearer token" if scheme else "no Authorization header"
    log.warning(
        "admin request refused (%s): %s %s from %s",
        reason,
        request.method,
        request.path,
        request.remote_addr,
    )
    response = json_response({"error": "Unauthorized"}, 401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def never_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _as_sent(header_value: str) -> bytes:
    """WSGI headers are latin-1 text: encoding them back gives the bytes as sent."""
    try:
        return header_value.encode("latin-1")
    except UnicodeEncodeError:  # a server that decoded them otherwise
        return header_value.encode("utf-8", "surrogateescape")


def _digest(token: bytes) -> bytes:
    """Equal-length values to compare, whatever the presented token's length."""
    return hashlib.sha256(token).digest()


def _refused(exc: Exception | str) -> Response:
    return json_response({"error": str(exc)}, 422)


def _send(messages: list[JobMessage]) -> None:
    """After the commit. If the broker is down the jobs stay queued in Postgres, and beat's
    dispatcher sends them again once it notices the lost messages."""
    try:
        services().enqueue(messages)
    except BrokerError:
        log.exception("could not send %d job messages; the dispatcher will", len(messages))


def _empty() -> Response:
    """200 with no body, as the reference's `reply.send()`."""
    response = current_app.response_class(status=200)
    del response.headers["Content-Type"]
    return response


def _progress_body(figures: Progress) -> dict[str, Any]:
    return {
        "kinds": figures.counts,
        "tokens": {"total": figures.total(), "finished": figures.finished()},
        "window_s": figures.window_s,
        "tokens_per_second": figures.tokens_per_second,
        "seconds_left": figures.seconds_left,
    }


def _contract_progress_body(figures: ContractProgress) -> dict[str, Any]:
    return {
        "contract_id": figures.principal,
        "sip": figures.sip,
        "token_count": figures.token_count,
        "contract_job": figures.contract_job,
        "tokens": {**figures.tokens, "total": figures.total},
        "finished": figures.finished,
        "window_s": figures.window_s,
        "tokens_per_second": figures.tokens_per_second,
        "seconds_left": figures.seconds_left,
    }
