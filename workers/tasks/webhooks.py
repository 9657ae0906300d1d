"""Webhook tasks (docs/webhooks.md#delivery): beat's dispatcher, and one delivery per due
subscription on the webhooks queue."""

from __future__ import annotations

import logging

from celery import current_app, shared_task

from shared.db import session_scope
from shared.queues import DELIVER_WEBHOOKS_TASK, DISPATCH_WEBHOOKS_TASK, WEBHOOKS_QUEUE
from shared.webhooks import metrics
from shared.webhooks.delivery import WebhookSettings, deliver
from shared.webhooks.dispatch import due_subscriptions
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@shared_task(name=DISPATCH_WEBHOOKS_TASK, ignore_result=True)
def dispatch_webhooks() -> int:
    """Send a delivery message for each due subscription; returns how many."""
    ctx = get_runtime(current_app).ctx
    with session_scope(ctx.sessions) as session:
        dispatch = due_subscriptions(session)
    metrics.set_feed_lag((lag.subscription_id, lag.entries, lag.seconds) for lag in dispatch.lags)
    for subscription_id in dispatch.due:
        current_app.send_task(DELIVER_WEBHOOKS_TASK, args=[subscription_id], queue=WEBHOOKS_QUEUE)
    return len(dispatch.due)


@shared_task(name=DELIVER_WEBHOOKS_TASK, ignore_result=True)
def deliver_webhooks(subscription_id: int) -> int:
    """Deliver a subscription's batches until caught up or failing; returns the entries
    acknowledged."""
    runtime = get_runtime(current_app)
    settings = WebhookSettings.from_settings(runtime.ctx.settings)
    outcomes = deliver(runtime.ctx.sessions, runtime.webhooks.post, settings, subscription_id)
    return sum(outcome.entries for outcome in outcomes if outcome.kind == "delivered")
