"""Messages waiting in each broker queue, read from Redis (the dashboard and worker metrics)."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from kombu.transport.redis import PRIORITY_STEPS

from shared.queues import WORKER_QUEUES

# kombu's Redis transport keeps priorities 3, 6 and 9 of queue Q in lists `Q\x06\x163`, ...
PRIORITY_SEPARATOR = "\x06\x16"


def queue_keys(queue: str, steps: Sequence[int] = PRIORITY_STEPS) -> list[str]:
    """The Redis lists holding one queue's messages: one per priority step."""
    return [f"{queue}{PRIORITY_SEPARATOR}{step}" if step else queue for step in steps]


def read_queue_lengths(
    client: redis.Redis, queues: Sequence[str] = WORKER_QUEUES
) -> dict[str, int]:
    """Each queue's length, its priority lists added up, in one round trip. Raises RedisError."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            for key in queue_keys(queue):
                pipe.llen(key)
        counts = iter(pipe.execute())
    steps = len(PRIORITY_STEPS)
    return {queue: sum(int(next(counts)) for _ in range(steps)) for queue in queues}
