"""Job messages sent from the API (admin routes) by task name: the API never imports workers.

The queues are declared as the workers declare them (one direct exchange per queue), so a
message lands on exactly the queue its `JobMessage` names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import Celery
from kombu import Exchange, Queue

from shared.queues import WORKER_QUEUES, JobMessage, task_calls

log = logging.getLogger(__name__)


class JobSender:
    """Sends "process job N" messages; connections are opened on first use, per process."""

    def __init__(self, redis_url: str) -> None:
        self.app = Celery("token_metadata_api", broker=redis_url, set_as_current=False)
        self.app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_retry_on_startup=True,
            task_queues=[
                Queue(name, Exchange(name, type="direct"), routing_key=name)
                for name in WORKER_QUEUES
            ],
        )

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        if not messages:
            return
        calls = task_calls(messages)  # token jobs batched, as the workers' own enqueuer does
        with self.app.producer_or_acquire() as producer:
            for call in calls:
                self.app.send_task(
                    call.task_name, args=call.args, queue=call.queue, producer=producer
                )
        log.info("enqueued %d jobs in %d messages", len(messages), len(calls))

    def close(self) -> None:
        self.app.close()
