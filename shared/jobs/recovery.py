"""Finds queued jobs that nothing will ever run and makes them pending again.

Five ways a queued job gets stranded: its worker died mid-job (the lease runs out), Redis
lost its messages (flush, or a restart without persistence: noticed by a marker key that
disappears with them), the dispatcher died between its commit and its send (each dispatch
records its job ids in Redis before the commit and removes them after the send: a record
left behind names the stranded jobs), a worker died holding a message it had popped but not
yet recorded as unacknowledged (found by reading the broker: the job's message is nowhere),
or one message was lost some other way (covered by a generous staleness limit). Re-queuing
is always safe: claims make duplicates no-ops.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import redis
from sqlalchemy.orm import Session

from shared.jobs.broker_messages import jobs_on_broker
from shared.jobs.table import IMAGE_JOBS, TOKEN_JOBS, Reaped

BROKER_MARKER_KEY = "token-metadata:broker-marker"
IN_FLIGHT_KEY = "token-metadata:dispatch-in-flight"
# A dispatch record older than this belongs to a dispatcher that died (a dispatch takes
# seconds at most).
IN_FLIGHT_GRACE_S = 60.0
# A queued job nobody claimed for this long, whose message waits on no queue and is held by
# no worker, lost its message (docs/job-engine.md#lost-messages). Past the in-flight grace, so
# a dispatch still sending is never mistaken for one.
MESSAGE_NOWHERE_AFTER = timedelta(seconds=IN_FLIGHT_GRACE_S)
# The broker is read for them at most this often, by one dispatcher.
LOST_MESSAGE_SCAN_KEY = "token-metadata:lost-message-scan"
LOST_MESSAGE_SCAN_INTERVAL_S = 30
MAX_SUSPECTS = 10_000


def broker_lost_its_data(client: redis.Redis) -> bool:
    """True once after Redis came back empty; sets the marker for next time."""
    return bool(client.set(BROKER_MARKER_KEY, uuid.uuid4().hex, nx=True))


def reap_stranded_jobs(session: Session, broker_reset: bool, stale_after: timedelta) -> Reaped:
    """queued -> pending, token and image jobs alike, for dead workers' jobs and jobs whose
    message is gone."""
    jobs = TOKEN_JOBS.reap(session, broker_reset, stale_after)
    images = IMAGE_JOBS.reap(session, broker_reset, stale_after)
    return Reaped(
        jobs.expired_leases + images.expired_leases, jobs.lost_messages + images.lost_messages
    )


def recover_lost_messages(
    session: Session,
    client: redis.Redis,
    older_than: timedelta = MESSAGE_NOWHERE_AFTER,
    every_s: int = LOST_MESSAGE_SCAN_INTERVAL_S,
) -> int:
    """queued -> pending for jobs unclaimed since `older_than` whose message is on no queue and
    held by no worker; the broker is read at most every `every_s` and only when such jobs
    exist. Returns how many."""
    if client.exists(LOST_MESSAGE_SCAN_KEY):  # read lately: no need to look for suspects
        return 0
    token_jobs = TOKEN_JOBS.unclaimed_for(session, older_than, MAX_SUSPECTS)
    image_jobs = IMAGE_JOBS.unclaimed_for(session, older_than, MAX_SUSPECTS)
    if not token_jobs and not image_jobs:
        return 0
    if not client.set(LOST_MESSAGE_SCAN_KEY, "1", nx=True, ex=every_s):
        return 0
    on_broker = jobs_on_broker(client)
    if on_broker is None:  # too many messages to read: the staleness limit stays in charge
        return 0
    lost_tokens = [i for i in token_jobs if i not in on_broker.token_jobs]
    lost_images = [i for i in image_jobs if i not in on_broker.image_jobs]
    return TOKEN_JOBS.unqueue_unclaimed(
        session, lost_tokens, older_than
    ) + IMAGE_JOBS.unqueue_unclaimed(session, lost_images, older_than)


@contextmanager
def sending(
    client: redis.Redis, job_ids: Sequence[int], image_job_ids: Sequence[int] = ()
) -> Iterator[None]:
    """Record the jobs of a dispatch in Redis for its span: enter before the commit that
    marks them queued, leave after their messages are sent. A crash in between leaves the
    record, which `recover_interrupted_dispatches` turns back into pending jobs."""
    if not job_ids and not image_job_ids:
        yield
        return
    field = uuid.uuid4().hex
    record: dict[str, Any] = {"at": time.time(), "ids": list(job_ids)}
    if image_job_ids:
        record["image_ids"] = list(image_job_ids)
    client.hset(IN_FLIGHT_KEY, field, json.dumps(record))
    yield
    client.hdel(IN_FLIGHT_KEY, field)


def recover_interrupted_dispatches(
    session: Session, client: redis.Redis, grace_s: float = IN_FLIGHT_GRACE_S
) -> tuple[int, list[Any]]:
    """queued -> pending for unclaimed jobs of dispatches that never finished sending; returns
    how many, and the records to `forget_dispatches` once this session has committed."""
    stale: list[Any] = []
    job_ids: list[int] = []
    image_job_ids: list[int] = []
    for field, raw in client.hgetall(IN_FLIGHT_KEY).items():
        record = json.loads(raw)
        if time.time() - float(record["at"]) > grace_s:
            stale.append(field)
            job_ids += [int(i) for i in record["ids"]]
            image_job_ids += [int(i) for i in record.get("image_ids", ())]
    if not stale:
        return 0, []
    recovered = TOKEN_JOBS.unqueue_unclaimed(session, job_ids)
    recovered += IMAGE_JOBS.unqueue_unclaimed(session, image_job_ids)
    return recovered, stale


def forget_dispatches(client: redis.Redis, fields: Sequence[Any]) -> None:
    if fields:
        client.hdel(IN_FLIGHT_KEY, *fields)
