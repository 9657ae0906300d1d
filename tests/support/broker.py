"""Brokers in tests: the run's Redis DB with the given keys emptied before and after, and an
in-process one that keeps the messages jobs send."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

from shared.queues import JobMessage


class RecordingBroker:
    """The `enqueue` port of a job context: keeps every message, for a test to run."""

    def __init__(self) -> None:
        self.messages: list[JobMessage] = []

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.messages.extend(messages)


@contextmanager
def emptied(redis_url: str, *keys: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.delete(*keys)
    try:
        yield client
    finally:
        client.delete(*keys)
        client.close()
