"""The run's Redis DB as a broker in tests: the given keys emptied before and after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


@contextmanager
def emptied(redis_url: str, *keys: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.delete(*keys)
    try:
        yield client
    finally:
        client.delete(*keys)
        client.close()
