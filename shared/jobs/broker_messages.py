"""Which jobs have a message on the broker right now (docs/job-engine.md#lost-messages).

A message can vanish without Redis losing its data: Celery's Redis transport pops a message
off its queue (BRPOP) and only then records it as unacknowledged, so a worker killed between
the two takes the message with it, and nothing (not the visibility timeout either) ever gives
it back. The dispatcher asks this module which queued jobs still have a message, waiting on a
queue or held unacknowledged by a worker; a job old enough that has neither lost its message.

The broker is read in one MULTI transaction, so a message moving from a queue to the
unacknowledged set, or back, is seen in exactly one place. Reading is bounded: past
`MAX_MESSAGES` the answer is "unknown" and the slower staleness rule stays in charge.
The key names and the message layout are kombu's (its Redis transport's `Channel`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from kombu.transport.redis import Channel

from shared.queues import (
    CACHE_IMAGES_TASK,
    PROCESS_CONTRACT_TASK,
    PROCESS_TOKEN_TASK,
    PROCESS_TOKENS_TASK,
    WORKER_QUEUES,
)

# More messages than this on the broker: reading them all is not worth it (a backlog that
# large has messages for its jobs; the staleness rule still covers a lost one).
MAX_MESSAGES = 10_000
_TOKEN_TASKS = frozenset((PROCESS_CONTRACT_TASK, PROCESS_TOKEN_TASK, PROCESS_TOKENS_TASK))


@dataclass
class JobsOnBroker:
    """The job ids named by the broker's messages, per job table."""

    token_jobs: set[int] = field(default_factory=set)
    image_jobs: set[int] = field(default_factory=set)


def queue_keys(queues: Iterable[str] = WORKER_QUEUES) -> list[str]:
    """Every Redis list a message of these queues can wait in: one per priority step."""
    keys = []
    for queue in queues:
        for step in Channel.priority_steps:
            keys.append(f"{queue}{Channel.sep}{step}" if step else queue)
    return keys


def jobs_on_broker(
    client: redis.Redis, queues: Iterable[str] = WORKER_QUEUES
) -> JobsOnBroker | None:
    """The jobs whose messages wait on a queue or are held unacknowledged, or None when the
    broker holds more than MAX_MESSAGES messages."""
    keys = queue_keys(queues)
    with client.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.llen(key)
        pipe.hlen(Channel.unacked_key)
        sizes = pipe.execute()
    if sum(sizes) > MAX_MESSAGES:
        return None
    with client.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.lrange(key, 0, -1)
        pipe.hvals(Channel.unacked_key)
        *waiting, unacked = pipe.execute()
    found = JobsOnBroker()
    for queue_messages in waiting:
        for raw in queue_messages:
            _note(found, _load(raw))
    for raw in unacked:  # [message, exchange, routing key]
        entry = _load(raw)
        if isinstance(entry, list) and entry:
            _note(found, entry[0])
    return found


def _note(found: JobsOnBroker, message: Any) -> None:
    """Add the job ids a Celery message carries; anything else on the queue is ignored."""
    if not isinstance(message, dict):
        return
    task = (message.get("headers") or {}).get("task")
    if task in _TOKEN_TASKS:
        found.token_jobs.update(_job_ids(message))
    elif task == CACHE_IMAGES_TASK:
        found.image_jobs.update(_job_ids(message))


def _job_ids(message: dict[str, Any]) -> list[int]:
    """The first positional argument: a job id, or a list of them (a token batch)."""
    body = message.get("body")
    if not isinstance(body, str):
        return []
    if (message.get("properties") or {}).get("body_encoding") == "base64":
        try:
            body = base64.b64decode(body)
        except (binascii.Error, ValueError):
            return []
    payload = _load(body)
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], list):
        return []  # Celery's protocol 2 body: [args, kwargs, embed]
    args = payload[0]
    first = args[0] if args else None
    ids = first if isinstance(first, list) else [first]
    return [i for i in ids if isinstance(i, int)]


def _load(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
