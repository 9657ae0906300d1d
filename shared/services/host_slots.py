"""A per-host cap on concurrent metadata fetches, shared by every worker through Redis.

Each fetch holds a slot: a member of the host's sorted set scored by its expiry (Redis
server time), so a worker that dies mid-fetch frees its slot when the hold runs out.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import redis

from shared.errors import HostBusyError

_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local hold = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + hold, ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(hold) + 1)
  return 1
end
return 0
"""

KEY_PREFIX = "token-metadata:host-slots:"


class HostSlots:
    """`with slots.slot(host):` or HostBusyError when the host already has `limit` fetches."""

    def __init__(
        self,
        client: redis.Redis,
        limit: int,
        gateway_limit: int,
        gateway_hosts: Iterable[str],
        hold_s: float,
    ) -> None:
        self.client = client
        self.limit = limit
        self.gateway_limit = gateway_limit
        self.gateway_hosts = frozenset(host.lower() for host in gateway_hosts)
        self.hold_s = hold_s
        self._acquire = client.register_script(_ACQUIRE)
        self._local = threading.local()

    def _client(self) -> redis.Redis:
        """This thread's own connection: a hundred fetch threads sharing one pool would queue
        on its lock for every slot taken and given back."""
        client: redis.Redis | None = getattr(self._local, "client", None)
        if client is None:
            shared_pool = self.client.connection_pool
            pool = redis.ConnectionPool(
                connection_class=shared_pool.connection_class,
                max_connections=1,
                **shared_pool.connection_kwargs,
            )
            client = self._local.client = redis.Redis(connection_pool=pool)
        return client

    def limit_for(self, host: str) -> int:
        return self.gateway_limit if host.lower() in self.gateway_hosts else self.limit

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        key = KEY_PREFIX + host.lower()
        member = uuid.uuid4().hex
        client = self._client()
        acquired = self._acquire(
            keys=[key], args=[self.hold_s, self.limit_for(host), member], client=client
        )
        if not acquired:
            # Come back soon, spread out so waiting tokens do not all retry at once.
            raise HostBusyError(host, retry_after_s=1.0 + random.random())  # noqa: S311
        try:
            yield
        finally:
            client.zrem(key, member)

    def in_use(self, host: str) -> int:
        return int(self.client.zcard(KEY_PREFIX + host.lower()))
