"""How many requests a client made in its current hour, counted in Redis so that every API
process agrees (docs/marketplace-api.md#client-quota).

A window is fixed: it starts with the client's first request and lasts an hour, however many
requests follow (refused ones included), then the count starts again. Counting and starting
the window are one Lua script, one round trip, so a window always ends.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

WINDOW_S = 3600
KEY_PREFIX = "token-metadata:refresh-requests:"
# The most a Redis that does not answer delays a request (then it is allowed uncounted).
REDIS_TIMEOUT_S = 1.0

# KEYS: the client's counter. ARGV: the window in ms. Returns {count, ms left in the window}.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


@dataclass(frozen=True)
class Allowance:
    allowed: bool
    # Whole seconds until the window ends (at least 1); meaningful when refused.
    retry_after_s: int = 1


class ClientQuota:
    """At most `limit` requests per client per window.

    If Redis cannot be reached the request is allowed and a warning logged: the per-token
    cooldown in Postgres still bounds what one client can ask for, and refusing every
    refresh while Redis is away would punish every client for our outage.
    """

    def __init__(self, client: redis.Redis, limit: int, window_s: int = WINDOW_S) -> None:
        self.client = client
        self.limit = limit
        self.window_ms = window_s * 1000
        self._count = client.register_script(_COUNT)

    @classmethod
    def connect(cls, redis_url: str, limit: int) -> ClientQuota:
        """A quota on its own connection pool, with short timeouts and no retries (redis-py
        retries thrice with back-off by default: seconds per request while Redis is away)."""
        client = redis.Redis.from_url(
            redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, limit)

    def take(self, client_key: str) -> Allowance:
        """Count one request of `client_key`; refused once past the limit."""
        try:
            count, left_ms = self._count(keys=[KEY_PREFIX + client_key], args=[self.window_ms])
        except redis.RedisError as exc:
            log.warning("refresh quota not counted, request allowed (Redis: %s)", exc)
            return Allowance(allowed=True)
        return Allowance(int(count) <= self.limit, max(1, math.ceil(int(left_ms) / 1000)))

    def close(self) -> None:
        self.client.close()
