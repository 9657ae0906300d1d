"""Delivering the change log to a webhook subscription (docs/webhooks.md#delivery).

One delivery takes the subscription's lease (so two workers never deliver to one
subscription at once), reads up to BATCH_SIZE entries after its `last_delivered_id` with the
feed's own statement (`shared.reads.changes.read_changes`, entries encoded as `GET /changes`
encodes them), POSTs them signed through the guarded fetcher and records the outcome in
Postgres: on a 2xx the position moves past the batch; otherwise the attempt count grows and
the next attempt waits an exponential back-off, and an endpoint failing for longer than
WEBHOOK_DISABLE_AFTER_H is paused with the reason. Every attempt leaves a row in
`webhook_deliveries`.

At least once: a worker killed after its POST and before its commit leaves the position
where it was; once the lease expires the batch is sent again, with the same entry ids and
`"redelivery": true`.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import session_scope
from shared.errors import JobError
from shared.jsonio import dumps
from shared.metadata.fetch import FetchLimits, MetadataFetcher
from shared.metadata.netguard import BlockedAddressError, NetGuard
from shared.reads.changes import ChangesPage, ChangesPruned, SessionRows, read_changes
from shared.webhooks import metrics
from shared.webhooks.signing import HEADER, sign
from shared.webhooks.subscriptions import DELIVERIES_KEPT

log = logging.getLogger(__name__)

BATCH_SIZE = 100
# Batches one delivery task sends before it lets other subscriptions' deliveries run.
MAX_BATCHES_PER_TASK = 10
# A receiver's answer body is read up to this much, then thrown away.
MAX_ANSWER_BYTES = 65536
LEASE_MARGIN_S = 30.0
MAX_ERROR_CHARS = 500

Poster = Callable[[str, bytes, Mapping[str, str]], int]


@dataclass(frozen=True)
class WebhookSettings:
    timeout_s: float = 10.0
    backoff_base_s: float = 10.0
    max_backoff_s: float = 86_400.0
    disable_after_s: float = 86_400.0
    batch_size: int = BATCH_SIZE

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSettings:
        return cls(
            timeout_s=settings.webhook_timeout_s,
            backoff_base_s=settings.webhook_backoff_base_s,
            max_backoff_s=settings.webhook_max_backoff_s,
            disable_after_s=settings.webhook_disable_after_h * 3600,
        )

    @property
    def lease_s(self) -> float:
        """Longer than a POST can take: a lease outliving its holder means it died."""
        return self.timeout_s * 2 + LEASE_MARGIN_S


def webhook_fetcher(settings: Settings) -> MetadataFetcher:
    """The guarded fetcher for webhook POSTs: WEBHOOK_TIMEOUT_S to connect, read and in all,
    no redirects, private addresses refused unless METADATA_FETCH_ALLOW_PRIVATE_NETWORKS."""
    limits = FetchLimits(
        timeout_s=settings.webhook_timeout_s,
        total_timeout_s=settings.webhook_timeout_s,
        max_bytes=MAX_ANSWER_BYTES,
        max_redirects=0,
    )
    guard = NetGuard(allow_private=settings.metadata_fetch_allow_private_networks)
    return MetadataFetcher(limits, guard, user_agent="stacks-token-metadata-webhooks")


def backoff_s(attempts: int, base_s: float, max_s: float, rand: float | None = None) -> float:
    """The wait after the `attempts`-th failure in a row: base, 2 base, 4 base... capped at
    `max_s`, less up to a fifth at random so that failing subscriptions spread out."""
    exponent = min(max(attempts - 1, 0), 64)
    delay = min(max_s, base_s * 2.0**exponent)
    jitter = random.random() if rand is None else rand  # noqa: S311 - not cryptographic
    return delay * (1 - 0.2 * jitter)


@dataclass(frozen=True)
class Outcome:
    """What one delivery step did: `delivered`, `failed`, `refused`, `caught_up` (nothing
    to send; the position may have moved past filtered entries), `busy` (not due, leased by
    another worker, paused or gone) or `pruned` (paused: its entries were pruned)."""

    kind: str
    entries: int = 0
    first_id: int | None = None
    last_id: int | None = None
    status_code: int | None = None
    error: str | None = None
    more: bool = False  # a full batch was delivered: more may follow


_CLAIM = text(
    """
    UPDATE webhook_subscriptions
       SET lease_until = now() + make_interval(secs => :lease_s), lease_token = :token
     WHERE id = :id AND status = 'active' AND next_attempt_at <= now()
       AND (lease_until IS NULL OR lease_until < now())
    RETURNING id, url, secret, contracts, kinds, last_delivered_id, sent_through, attempts
    """
)
# Before the POST, in the claim's transaction: a batch reaching back to an id at or below it
# may have been received already (a killed worker, a timeout), and says so.
_SENDING = text(
    """
    UPDATE webhook_subscriptions SET sent_through = GREATEST(sent_through, :last_id)
     WHERE id = :id AND lease_token = :token
    """
)
_RELEASE = text(
    """
    UPDATE webhook_subscriptions
       SET last_delivered_id = GREATEST(last_delivered_id, :position),
           lease_until = NULL, lease_token = NULL, enqueued_at = NULL
     WHERE id = :id AND lease_token = :token
    """
)
_PAUSE_PRUNED = text(
    """
    UPDATE webhook_subscriptions
       SET status = 'paused', paused_reason = :reason, updated_at = now(),
           lease_until = NULL, lease_token = NULL, enqueued_at = NULL
     WHERE id = :id AND lease_token = :token
    """
)
_RECORD = """
    INSERT INTO webhook_deliveries (subscription_id, first_id, last_id, entries, attempted_at,
                                    status_code, outcome, error, duration_ms)
    SELECT s.id, :first_id, :last_id, :entries, :attempted_at, :status_code,
           CAST(:outcome AS webhook_outcome), :error, :duration_ms
      FROM s
    RETURNING subscription_id
"""
_DELIVERED = text(
    f"""
    WITH s AS (
        UPDATE webhook_subscriptions
           SET last_delivered_id = GREATEST(last_delivered_id, :position),
               attempts = 0, last_error = NULL, failing_since = NULL, next_attempt_at = now(),
               lease_until = NULL, lease_token = NULL,
               -- still being delivered by this task when more may follow
               enqueued_at = CASE WHEN CAST(:more AS boolean) THEN enqueued_at END,
               updated_at = now()
         WHERE id = :id AND lease_token = :token
        RETURNING id
    )
    {_RECORD}
    """  # noqa: S608 - composed of constant SQL, values are bound
)
# Paused once it has been failing for `disable_after_s`, saying since when and why.
_FAILED = text(
    f"""
    WITH s AS (
        UPDATE webhook_subscriptions
           SET attempts = attempts + 1, last_error = :error,
               failing_since = COALESCE(failing_since, now()),
               next_attempt_at = now() + make_interval(secs => :delay_s),
               status = CASE WHEN COALESCE(failing_since, now())
                                  <= now() - make_interval(secs => :disable_after_s)
                             THEN CAST('paused' AS webhook_status) ELSE status END,
               paused_reason = CASE WHEN COALESCE(failing_since, now())
                                         <= now() - make_interval(secs => :disable_after_s)
                                    THEN 'Endpoint failing since '
                                         || to_char(failing_since AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                                         || ': ' || :error
                                    ELSE paused_reason END,
               lease_until = NULL, lease_token = NULL, enqueued_at = NULL, updated_at = now()
         WHERE id = :id AND lease_token = :token
        RETURNING id
    )
    {_RECORD}
    """  # noqa: S608 - composed of constant SQL, values are bound
)
# The newest DELIVERIES_KEPT attempts stay.
_PRUNE_DELIVERIES = text(
    """
    DELETE FROM webhook_deliveries
     WHERE subscription_id = :id
       AND id <= (SELECT id FROM webhook_deliveries WHERE subscription_id = :id
                   ORDER BY id DESC OFFSET :kept LIMIT 1)
    """
)


def deliver(
    sessions: sessionmaker[Session],
    post: Poster,
    settings: WebhookSettings,
    subscription_id: int,
    max_batches: int = MAX_BATCHES_PER_TASK,
) -> list[Outcome]:
    """Deliver batches to one subscription until it is caught up, fails, or `max_batches`
    were sent; returns what each step did."""
    outcomes: list[Outcome] = []
    for _ in range(max_batches):
        outcome = deliver_batch(sessions, post, settings, subscription_id)
        outcomes.append(outcome)
        if not outcome.more:
            return outcomes
    with session_scope(sessions) as session:  # let the next dispatch carry on
        session.execute(
            text(
                "UPDATE webhook_subscriptions SET lease_until = NULL, lease_token = NULL, "
                "enqueued_at = NULL WHERE id = :id"
            ),
            {"id": subscription_id},
        )
    return outcomes


def deliver_batch(
    sessions: sessionmaker[Session],
    post: Poster,
    settings: WebhookSettings,
    subscription_id: int,
) -> Outcome:
    """One batch: claim, read, POST, record."""
    token = uuid.uuid4().hex
    with session_scope(sessions) as session:
        claimed = session.execute(
            _CLAIM, {"id": subscription_id, "lease_s": settings.lease_s, "token": token}
        ).one_or_none()
        if claimed is None:
            return Outcome("busy")
        page = read_changes(
            SessionRows(session),
            claimed.last_delivered_id,
            settings.batch_size,
            claimed.contracts,
            claimed.kinds,
        )
        if isinstance(page, ChangesPage) and page.results:
            last = page.results[-1]["id"]
            session.execute(_SENDING, {"id": subscription_id, "token": token, "last_id": last})
    ids = {"id": subscription_id, "token": token}
    if isinstance(page, ChangesPruned):
        reason = (
            f"Changes pruned: entries up to id {page.pruned_through} are gone and some after "
            f"{claimed.last_delivered_id} may be; resynchronise, then create a subscription "
            f"with after={page.latest_id}"
        )
        with session_scope(sessions) as session:
            session.execute(_PAUSE_PRUNED, {**ids, "reason": reason})
        log.warning("webhook %s paused: %s", subscription_id, reason)
        return Outcome("pruned", error=reason)
    if not page.results:
        with session_scope(sessions) as session:
            session.execute(_RELEASE, {**ids, "position": page.next_after})
        return Outcome("caught_up")
    entries = page.results
    first_id, last_id = int(entries[0]["id"]), int(entries[-1]["id"])
    body = dumps(
        {
            "subscription_id": subscription_id,
            "redelivery": first_id <= claimed.sent_through,
            "changes": entries,
        }
    )
    attempted_at = datetime.now().astimezone()
    started = time.perf_counter()
    status_code, error, kind = _post(post, claimed.url, claimed.secret, body)
    duration_ms = int((time.perf_counter() - started) * 1000)
    record = {
        "first_id": first_id,
        "last_id": last_id,
        "entries": len(entries),
        "attempted_at": attempted_at,
        "status_code": status_code,
        "outcome": kind,
        "error": error,
        "duration_ms": duration_ms,
    }
    metrics.DELIVERIES.labels(kind).inc()
    if kind == "delivered":
        more = len(entries) == settings.batch_size
        _finish_delivered(sessions, {**ids, **record, "position": page.next_after, "more": more})
        newest = datetime.fromisoformat(str(entries[-1]["at"]))
        metrics.DELIVERY_LATENCY.observe(max(0.0, time.time() - newest.timestamp()))
        return Outcome(kind, len(entries), first_id, last_id, status_code, more=more)
    delay = backoff_s(claimed.attempts + 1, settings.backoff_base_s, settings.max_backoff_s)
    _finish_failed(
        sessions,
        {
            **ids,
            **record,
            "delay_s": delay,
            "disable_after_s": settings.disable_after_s,
        },
    )
    log.info(
        "webhook %s: entries %s-%s %s (%s); next attempt in %.0f s",
        subscription_id,
        first_id,
        last_id,
        kind,
        error,
        delay,
    )
    return Outcome(kind, len(entries), first_id, last_id, status_code, error)


def _post(post: Poster, url: str, secret: str, body: bytes) -> tuple[int | None, str | None, str]:
    """(status code, error, outcome) of one POST: any 2xx acknowledges; a redirect, another
    status, a timeout or a connection failure is a failure; a refused address is `refused`."""
    headers = {
        "Content-Type": "application/json",
        HEADER: sign(secret, int(time.time()), body),
    }
    try:
        status = post(url, body, headers)
    except BlockedAddressError as exc:
        return None, str(exc)[:MAX_ERROR_CHARS], "refused"
    except JobError as exc:  # timeouts, connection failures, answers over the size limit
        return None, str(exc)[:MAX_ERROR_CHARS] or type(exc).__name__, "failed"
    except OSError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS], "failed"
    if 200 <= status < 300:
        return status, None, "delivered"
    if 300 <= status < 400:
        return status, f"HTTP {status} from {url} (redirects are not followed)", "failed"
    return status, f"HTTP {status} from {url}", "failed"


def _finish_delivered(sessions: sessionmaker[Session], params: dict[str, Any]) -> None:
    """Move the position past the acknowledged batch (the crash window of at-least-once is
    between the POST and this commit)."""
    with session_scope(sessions) as session:
        if session.execute(_DELIVERED, params).one_or_none() is not None:
            session.execute(_PRUNE_DELIVERIES, {"id": params["id"], "kept": DELIVERIES_KEPT})


def _finish_failed(sessions: sessionmaker[Session], params: dict[str, Any]) -> None:
    with session_scope(sessions) as session:
        if session.execute(_FAILED, params).one_or_none() is not None:
            session.execute(_PRUNE_DELIVERIES, {"id": params["id"], "kept": DELIVERIES_KEPT})
