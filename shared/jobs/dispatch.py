"""Beat's dispatcher: recover stranded jobs, then queue and send the due ones
(docs/job-engine.md#dispatch).

The order is what makes it safe: the due jobs are recorded in Redis as in flight, marked
queued and committed, and only then sent; the record is removed once the send is done.
A dispatcher that dies after the commit leaves the record, and the next dispatch (after
`IN_FLIGHT_GRACE_S`) sends those jobs back to pending; one that dies after the send but
before removing the record makes the next dispatch pend again only jobs no worker claimed
yet, whose second message a claim turns into a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy.orm import Session, sessionmaker

from shared.db import session_scope
from shared.images.jobs import queue_due_image_jobs
from shared.jobs.recovery import (
    IN_FLIGHT_GRACE_S,
    broker_lost_its_data,
    forget_dispatches,
    reap_stranded_jobs,
    recover_interrupted_dispatches,
    recover_lost_messages,
    sending,
)
from shared.jobs.transitions import queue_due_jobs
from shared.queues import Enqueue

log = logging.getLogger(__name__)

# The most contract and token jobs one dispatch queues.
DISPATCH_BATCH_SIZE = 5000
# A queued job nobody claimed for this long lost its message some other way; a flushed or
# restarted Redis, or an interrupted dispatch, is noticed at once instead.
LOST_MESSAGE_AFTER = timedelta(minutes=10)
# Image jobs waiting on the broker at most: a backlog waits in Postgres, not in Redis.
IMAGE_QUEUE_DEPTH = 1000


@dataclass(frozen=True)
class Dispatcher:
    """What a dispatch needs: the database, Redis, and the ports that send messages."""

    sessions: sessionmaker[Session]
    redis: redis.Redis
    enqueue: Enqueue
    enqueue_images: Callable[[Sequence[int]], None]
    images_enabled: bool
    batch_size: int = DISPATCH_BATCH_SIZE
    stale_after: timedelta = LOST_MESSAGE_AFTER
    in_flight_grace_s: float = IN_FLIGHT_GRACE_S


@dataclass(frozen=True)
class Dispatched:
    jobs: int
    image_jobs: int
    expired_leases: int
    lost_messages: int
    interrupted: int
    broker_reset: bool


def dispatch_due(dispatcher: Dispatcher) -> Dispatched:
    """Recover stranded jobs (dead workers, lost messages, interrupted dispatches), then
    queue the due ones, commit, and send them."""
    client = dispatcher.redis
    broker_reset = broker_lost_its_data(client)
    with ExitStack() as in_flight:
        with session_scope(dispatcher.sessions) as session:
            grace_s = dispatcher.in_flight_grace_s
            interrupted, records = recover_interrupted_dispatches(session, client, grace_s)
            reaped = reap_stranded_jobs(session, broker_reset, dispatcher.stale_after)
            nowhere = 0 if broker_reset else recover_lost_messages(session, client)
            messages = queue_due_jobs(session, dispatcher.batch_size)
            image_ids: list[int] = []
            if dispatcher.images_enabled:
                image_ids = queue_due_image_jobs(
                    session, IMAGE_QUEUE_DEPTH, max_waiting=IMAGE_QUEUE_DEPTH
                )
            job_ids = [message.job_id for message in messages]
            in_flight.enter_context(sending(client, job_ids, image_ids))
        forget_dispatches(client, records)
        dispatched = Dispatched(
            len(messages),
            len(image_ids),
            reaped.expired_leases,
            reaped.lost_messages + nowhere,
            interrupted,
            broker_reset,
        )
        _log_recovery(dispatched)
        dispatcher.enqueue(messages)
        dispatcher.enqueue_images(image_ids)
    return dispatched


def _log_recovery(dispatched: Dispatched) -> None:
    if dispatched.expired_leases or dispatched.lost_messages or dispatched.interrupted:
        log.warning(
            "recovered %d jobs of dead workers, %d jobs of an interrupted dispatch and "
            "%d jobs whose message was lost%s",
            dispatched.expired_leases,
            dispatched.interrupted,
            dispatched.lost_messages,
            " (the broker came back empty)" if dispatched.broker_reset else "",
        )
