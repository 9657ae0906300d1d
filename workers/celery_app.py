"""The Celery application factory: broker, queues, routing, limits and the beat schedule."""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from shared.config import Settings
from shared.queues import (
    CACHE_IMAGES_TASK,
    CHAIN_QUEUE,
    CONTRACTS_QUEUE,
    DELIVER_WEBHOOKS_TASK,
    DISPATCH_JOBS_TASK,
    DISPATCH_WEBHOOKS_TASK,
    IMAGES_QUEUE,
    MONITOR_CHAIN_TASK,
    PROCESS_CONTRACT_TASK,
    PROCESS_TOKEN_TASK,
    PROCESS_TOKENS_TASK,
    PRUNE_CHANGES_TASK,
    TOKENS_QUEUE,
    WEBHOOKS_QUEUE,
    WORKER_QUEUES,
)

DISPATCH_INTERVAL_S = 2.0
PRUNE_CHANGES_INTERVAL_S = 60.0
WEBHOOKS_DISPATCH_INTERVAL_S = 0.5
# Extra seconds a job's hard time limit has over its soft one.
HARD_LIMIT_GRACE_S = 30
# How often a worker looks for messages whose consumer died (kombu's restore sweep).
UNACKED_RESTORE_INTERVAL_S = 10


def visibility_timeout_s(settings: Settings) -> int:
    """Seconds an unacknowledged message stays with its consumer: a job's hard time limit
    and a margin. A job still running past it (a webhook delivery can) gets a second message,
    which its claim or lease turns into a no-op."""
    return int(settings.job_queue_timeout_ms / 1000 + HARD_LIMIT_GRACE_S * 2)


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("token_metadata", broker=settings.redis_url, backend=settings.redis_url)
    job_timeout_s = settings.job_queue_timeout_ms / 1000
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Consume queues strictly in the order given (chain, contracts, tokens, refresh).
        # A message a killed worker had received but not acknowledged goes back to its queue
        # once the visibility timeout has passed: just past the longest job, so a dead
        # worker's unclaimed jobs return within about two minutes (docs/job-engine.md#faults).
        broker_transport_options={
            "queue_order_strategy": "priority",
            "visibility_timeout": visibility_timeout_s(settings),
            "unacked_restore_interval": UNACKED_RESTORE_INTERVAL_S,
            "unacked_restore_throttle": 1,
        },
        # One exchange per queue: a message routed to one queue never reaches another.
        task_queues=[
            Queue(name, Exchange(name, type="direct"), routing_key=name) for name in WORKER_QUEUES
        ],
        task_default_queue=TOKENS_QUEUE,
        task_default_exchange=TOKENS_QUEUE,
        task_default_routing_key=TOKENS_QUEUE,
        task_routes={
            PROCESS_CONTRACT_TASK: {"queue": CONTRACTS_QUEUE},
            PROCESS_TOKEN_TASK: {"queue": TOKENS_QUEUE},
            PROCESS_TOKENS_TASK: {"queue": TOKENS_QUEUE},
            MONITOR_CHAIN_TASK: {"queue": CHAIN_QUEUE},
            DISPATCH_JOBS_TASK: {"queue": CHAIN_QUEUE},
            PRUNE_CHANGES_TASK: {"queue": CHAIN_QUEUE},
            CACHE_IMAGES_TASK: {"queue": IMAGES_QUEUE},
            # On the webhooks queue, consumed last: never in the way of chain monitoring.
            DISPATCH_WEBHOOKS_TASK: {"queue": WEBHOOKS_QUEUE},
            DELIVER_WEBHOOKS_TASK: {"queue": WEBHOOKS_QUEUE},
        },
        task_annotations={
            name: {
                "soft_time_limit": job_timeout_s,
                "time_limit": job_timeout_s + HARD_LIMIT_GRACE_S,
            }
            for name in (
                PROCESS_CONTRACT_TASK,
                PROCESS_TOKEN_TASK,
                PROCESS_TOKENS_TASK,
                CACHE_IMAGES_TASK,
            )
        }
        | {
            # A delivery task sends at most a few batches, each within WEBHOOK_TIMEOUT_S.
            DELIVER_WEBHOOKS_TASK: {
                "soft_time_limit": settings.webhook_timeout_s * 12 + 30,
                "time_limit": settings.webhook_timeout_s * 12 + 60,
            }
        },
        beat_schedule={
            "monitor-chain": {
                "task": MONITOR_CHAIN_TASK,
                "schedule": settings.chain_poll_interval_s,
                "options": {"expires": settings.chain_poll_interval_s},
            },
            "dispatch-jobs": {
                "task": DISPATCH_JOBS_TASK,
                "schedule": DISPATCH_INTERVAL_S,
                "options": {"expires": DISPATCH_INTERVAL_S},
            },
            # Entries past CHANGES_RETENTION_DAYS, in bounded batches (shared/changes.py).
            "prune-changes": {
                "task": PRUNE_CHANGES_TASK,
                "schedule": PRUNE_CHANGES_INTERVAL_S,
                "options": {"expires": PRUNE_CHANGES_INTERVAL_S},
            },
            # Webhook deliveries due (shared/webhooks/dispatch.py); their state is in Postgres.
            "dispatch-webhooks": {
                "task": DISPATCH_WEBHOOKS_TASK,
                "schedule": WEBHOOKS_DISPATCH_INTERVAL_S,
                "options": {"expires": WEBHOOKS_DISPATCH_INTERVAL_S},
            },
        },
        worker_hijack_root_logger=False,
    )
    app.conf.token_metadata_settings = settings
    return app
