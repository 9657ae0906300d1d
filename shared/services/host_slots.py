"""A per-host cap on concurrent metadata fetches, shared by every worker through Redis.

Each fetch holds a slot: a member of the host's sorted set scored by its expiry (Redis
server time), so a worker that dies mid-fetch frees its slot when the hold runs out.

Taking and giving back a slot are two Redis round trips, a tenth of a worker's CPU per
token. So a process may keep a slot it has given back for a moment (`keep_idle_s`) and
hand it to its next fetch of that host without asking Redis, for as long as the slot's
hold still outlasts any fetch (`reuse_for_s` after it was taken). A sweeper thread gives
idle slots back to Redis, so other workers get them within about `keep_idle_s`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
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
log = logging.getLogger(__name__)


class HostSlots:
    """`with slots.slot(host):` or HostBusyError when the host already has `limit` fetches."""

    def __init__(
        self,
        client: redis.Redis,
        limit: int,
        gateway_limit: int,
        gateway_hosts: Iterable[str],
        hold_s: float,
        *,
        keep_idle_s: float = 0.0,
        reuse_for_s: float = 0.0,
    ) -> None:
        self.client = client
        self.limit = limit
        self.gateway_limit = gateway_limit
        self.gateway_hosts = frozenset(host.lower() for host in gateway_hosts)
        self.hold_s = hold_s
        self.keep_idle_s = keep_idle_s
        self.reuse_for_s = min(reuse_for_s, hold_s) if keep_idle_s > 0 else 0.0
        self._acquire = client.register_script(_ACQUIRE)
        # key -> slots given back but still held in Redis: (member, reusable until, idle since),
        # the most recently given back last.
        self._idle: dict[str, list[tuple[str, float, float]]] = {}
        self._idle_lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    def limit_for(self, host: str) -> int:
        return self.gateway_limit if host.lower() in self.gateway_hosts else self.limit

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        key = KEY_PREFIX + host.lower()
        kept = self._take_idle(key)
        if kept is not None:
            member, reusable_until = kept
        else:
            member, reusable_until = self._take(key, host), time.monotonic() + self.reuse_for_s
        try:
            yield
        finally:
            self._give_back(key, member, reusable_until)

    def in_use(self, host: str) -> int:
        """Slots of a host held in Redis, by every worker (idle kept ones included)."""
        return int(self.client.zcard(KEY_PREFIX + host.lower()))

    def _take(self, key: str, host: str) -> str:
        member = uuid.uuid4().hex
        acquired = self._acquire(
            keys=[key], args=[self.hold_s, self.limit_for(host), member], client=self.client
        )
        if not acquired:
            # Come back soon, spread out so waiting tokens do not all retry at once.
            raise HostBusyError(host, retry_after_s=1.0 + random.random())  # noqa: S311
        return member

    def _take_idle(self, key: str) -> tuple[str, float] | None:
        """A slot this process gave back a moment ago and may still use, if any."""
        if self.reuse_for_s <= 0:
            return None
        now = time.monotonic()
        with self._idle_lock:
            idle = self._idle.get(key, [])
            for index in range(len(idle) - 1, -1, -1):  # the most recently used first
                member, reusable_until, _ = idle[index]
                if reusable_until > now:  # (older ones are left to the sweeper)
                    del idle[index]
                    return member, reusable_until
        return None

    def _give_back(self, key: str, member: str, reusable_until: float) -> None:
        now = time.monotonic()
        if reusable_until <= now:
            self.client.zrem(key, member)
            return
        with self._idle_lock:
            self._idle.setdefault(key, []).append((member, reusable_until, now))
            if self._sweeper is None:
                self._sweeper = threading.Thread(
                    target=self._sweep_forever, name="host-slots-sweeper", daemon=True
                )
                self._sweeper.start()

    def _sweep_forever(self) -> None:
        """Runs while slots are kept: stops when none is left, the next give-back restarts it."""
        while True:
            time.sleep(self.keep_idle_s / 2)
            try:
                self.sweep()
            except redis.RedisError:  # the slots expire on their own meanwhile
                log.warning("could not give idle host slots back to Redis", exc_info=True)
            with self._idle_lock:
                if not any(self._idle.values()):
                    self._sweeper = None
                    return

    def sweep(self, now: float | None = None) -> int:
        """Give back to Redis the kept slots idle for `keep_idle_s` or too old to reuse."""
        now = time.monotonic() if now is None else now
        due: dict[str, list[str]] = {}
        with self._idle_lock:
            for key, idle in self._idle.items():
                stale = [
                    m for m, until, since in idle if since <= now - self.keep_idle_s or until <= now
                ]
                if stale:
                    gone = set(stale)
                    idle[:] = [entry for entry in idle if entry[0] not in gone]
                    due[key] = stale
            for key in [key for key, idle in self._idle.items() if not idle]:
                del self._idle[key]
        if due:
            with self.client.pipeline(transaction=False) as pipe:
                for key, members in due.items():
                    pipe.zrem(key, *members)
                pipe.execute()
        return sum(len(members) for members in due.values())
