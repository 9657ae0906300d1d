"""A per-host cap on concurrent metadata fetches, shared by every worker through Redis.

Each fetch holds a slot: a member of the host's sorted set in Redis, scored by its expiry
(Redis server time), so a worker that dies mid-fetch frees its slots when their hold runs out.

Waiting for a busy host costs neither a thread nor a round trip through the job tables:
`request(host, callback)` either grants a slot at once or queues the callback in this process
and returns. A slot this process gives back goes straight to the host's next waiter (the same
Redis member, no Redis call while its hold still outlasts a fetch); slots other processes give
back are picked up by one poller thread, which also ends waits older than `max_wait_s` with
HostBusyError (the job is then deferred, so a host that stays saturated never pins a worker).

Fairness across processes: a process waiting for a host registers in the host's waiter set in
Redis. While others wait too, each process's share is the cap divided among the waiting
processes: one holding more than its share gives slots back to Redis instead of handing them
on, and acquires no more than its share. Waiters of one host are served first come, first
served; hosts never wait for each other.

See docs/host-slots.md.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from prometheus_client import Counter, Gauge

from shared.errors import HostBusyError
from shared.host_slot_keys import KEY_PREFIX, LIMIT_PREFIX, WAITERS_PREFIX
from shared.indexing.host_limits import INITIAL_LIMIT, AdaptiveLimits

# KEYS: the host's slots, the host's waiting processes[, the host's adaptive limit].
# ARGV: hold_s, cap, process id, waiter ttl_s, still waiting afterwards (0/1), members...
# Takes as many of the members as there are free slots under the host's limit (the cap, or
# the adaptive limit below it); returns {taken, other waiters, limit}.
_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local hold = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if KEYS[3] then
  local adaptive = tonumber(redis.call('HGET', KEYS[3], 'limit')) or INITIAL_LIMIT
  if adaptive < limit then limit = math.max(1, math.floor(adaptive)) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local free = limit - redis.call('ZCARD', KEYS[1])
local wanted = #ARGV - 5
local taken = math.max(0, math.min(free, wanted))
for i = 1, taken do
  redis.call('ZADD', KEYS[1], now + hold, ARGV[5 + i])
end
if taken > 0 then
  redis.call('EXPIRE', KEYS[1], math.ceil(hold) + 1)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if ARGV[5] == '1' or taken < wanted then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[4])) + 1)
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
local others = redis.call('ZCARD', KEYS[2])
if redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  others = others - 1
end
return {taken, others, limit}
""".replace("INITIAL_LIMIT", str(INITIAL_LIMIT))

# KEYS: the host's slots. ARGV: member, hold_s. Extends a slot still held; 0 if it is gone.
_RENEW = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return 1
"""

# How often the poller looks for slots freed by other processes while this one has waiters;
# a host that had none to give is asked less and less often, down to MAX_ASK_INTERVAL_S, so
# that hundreds of saturated hosts do not cost Redis a script call each every round.
POLL_INTERVAL_S = 0.02
MAX_ASK_INTERVAL_S = 0.2
# A process that stops polling (it died) stops counting as a waiter after this long; a
# waiting process renews its entry every WAITER_REFRESH_S even when it asks for nothing.
WAITER_TTL_S = 2.0
WAITER_REFRESH_S = 0.5
# How much longer than its wait a blocked caller gives the poller before it gives up itself.
SYNC_WAIT_GUARD_S = 5.0
# Once Redis is away the poller would fail every round: it says so at most this often.
WARN_EVERY_S = 10.0
log = logging.getLogger(__name__)

# In the process's default registry, which workers export (workers/metrics.py).
WAITING = Gauge(
    "token_metadata_host_slot_waiting",
    "Fetches of this worker waiting for a slot of a metadata host at its concurrency limit",
)
WAITS = Counter(
    "token_metadata_host_slot_waits",
    "Fetches that waited for a slot of a busy host, by how the wait ended (granted, or busy: "
    "deferred after the longest wait)",
    ["outcome"],
)

Callback = Callable[["Grant | Exception"], None]


@dataclass
class Grant:
    """One slot of a host held by this process: a member of the host's set in Redis."""

    key: str
    member: str
    # After this (monotonic) the hold is renewed before it serves another fetch, so that a
    # fetch started with it always ends before the hold does.
    reusable_until: float


@dataclass
class _Waiter:
    callback: Callback
    deadline: float


@dataclass
class _Host:
    """What this process knows of one host."""

    name: str
    held: int = 0  # slots of the host this process holds in Redis: in use, idle or being taken
    idle: list[tuple[Grant, float]] = field(default_factory=list)  # (grant, idle since)
    waiters: deque[_Waiter] = field(default_factory=deque)
    others_waiting: int = 0  # other processes waiting for the host, as of the last poll
    # When this process last entered or renewed its entry in the host's waiter set in Redis;
    # None while it has none.
    registered_at: float | None = None
    next_ask: float = 0.0  # when the poller may ask Redis for this host's slots again
    ask_interval: float = POLL_INTERVAL_S


class HostSlots:
    """Per-host fetch slots; `request` for asynchronous callers, `slot` for synchronous ones."""

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
        max_wait_s: float = 10.0,
        adaptive: bool = False,
    ) -> None:
        self.client = client
        self.limit = limit
        self.gateway_limit = gateway_limit
        self.gateway_hosts = frozenset(host.lower() for host in gateway_hosts)
        self.hold_s = hold_s
        self.keep_idle_s = keep_idle_s
        self.reuse_for_s = min(reuse_for_s, hold_s)
        self.max_wait_s = max_wait_s
        self.process_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._poller: threading.Thread | None = None
        self._local = threading.local()
        # Idle slots found too old to reuse, for the poller to give back to Redis.
        self._stale: list[Grant] = []
        self._warned_at = -math.inf
        # Each host's limit, moved by how its answers go (docs/host-slots.md#adaptive).
        self.limits = AdaptiveLimits(client, self.cap_for) if adaptive else None

    def cap_for(self, host: str) -> int:
        """The most slots a host ever gets."""
        return self.gateway_limit if host.lower() in self.gateway_hosts else self.limit

    def limit_for(self, host: str) -> int:
        """The host's slots now: its adaptive limit, or its cap."""
        return self.limits.limit(host) if self.limits is not None else self.cap_for(host)

    # --- asynchronous: a callback instead of a blocked thread

    def request(self, host: str, callback: Callback, wait_s: float | None = None) -> Grant | None:
        """A slot of `host` now, or None: then `callback` gets one later, from another thread,
        or HostBusyError after `wait_s` (default `max_wait_s`). The callback must not block.
        Redis errors while asking at once are raised; later ones end the wait as busy."""
        grant = self.try_now(host)
        if grant is not None:
            return grant
        key = KEY_PREFIX + host.lower()
        waited = self.max_wait_s if wait_s is None else wait_s
        with self._lock:
            state = self._hosts.setdefault(key, _Host(host.lower()))
            grant = self._take_idle(state) if not state.waiters else None
            if grant is not None:
                return grant
            state.waiters.append(_Waiter(callback, time.monotonic() + waited))
            WAITING.inc()
            if len(state.waiters) == 1:  # the poller may be asleep for longer: wake it
                state.next_ask = 0.0
                self._start_poller(wake=True)
        return None

    def try_now(self, host: str) -> Grant | None:
        """A slot of `host` if one is free right now and nobody here waits for the host."""
        key = KEY_PREFIX + host.lower()
        with self._lock:
            state = self._hosts.setdefault(key, _Host(host.lower()))
            if state.waiters:  # first come, first served: never jump the queue
                return None
            grant = self._take_idle(state)
            if grant is not None or state.held >= self._share(state):
                return grant
            state.held += 1  # reserved while we ask
        try:
            grants = self._take(state, 1, waiting_after=False)
        except BaseException:
            with self._lock:
                state.held -= 1
            raise
        return grants[0] if grants else None

    def release(self, grant: Grant) -> None:
        """Give a slot back: to the host's next waiter here, kept idle a moment, or to Redis."""
        now = time.monotonic()
        handed: tuple[_Waiter, Grant] | None = None
        renew_for: _Waiter | None = None
        give_back = False
        with self._lock:
            state = self._hosts[grant.key]
            expired = self._expired(state, now)
            if state.waiters and state.held <= self._share(state):
                waiter = state.waiters.popleft()
                if grant.reusable_until > now:
                    handed = (waiter, grant)
                else:
                    renew_for = waiter
            elif (
                grant.reusable_until > now
                and self.keep_idle_s > 0
                and not state.others_waiting
                and state.held <= self._share(state)  # over a limit just cut: give it back
            ):
                state.idle.append((grant, now))
                self._start_poller()
            else:
                state.held -= 1
                give_back = True
        _busy(expired, state.name)
        if handed is not None:
            _grant(*handed)
        elif renew_for is not None:
            self._hand_renewed(state, grant, renew_for)
        elif give_back:
            self._give_back(grant.key, [grant.member])

    # --- synchronous: for callers that fetch right away on their own thread

    @contextmanager
    def slot(self, host: str, wait_s: float = 0.0) -> Iterator[None]:
        """Hold a slot of `host` (HostBusyError if none comes within `wait_s`); inside a
        `holding` of the same host, the slot already held serves."""
        key = KEY_PREFIX + host.lower()
        if key in self._held_here():
            yield
            return
        grant = self.wait_for(host, wait_s)
        try:
            yield
        finally:
            self.release(grant)

    def wait_for(self, host: str, wait_s: float) -> Grant:
        """A slot of `host`, blocking this thread up to `wait_s`; HostBusyError otherwise."""
        if wait_s <= 0:
            grant = self.try_now(host)
            if grant is None:
                raise HostBusyError(host, retry_after_s=1.0 + random.random())  # noqa: S311
            return grant
        done = threading.Event()
        answer: list[Grant | Exception] = []
        lock = threading.Lock()

        def granted(result: Grant | Exception) -> None:
            with lock:
                if not done.is_set():
                    answer.append(result)
                    done.set()
                    return
            if isinstance(result, Grant):  # the caller gave up waiting: nobody will use it
                self.release(result)

        grant = self.request(host, granted, wait_s)
        if grant is not None:
            return grant
        done.wait(wait_s + SYNC_WAIT_GUARD_S)  # the poller answers by the deadline
        with lock:
            if not answer:
                done.set()  # a grant arriving from now on is given back
                raise HostBusyError(host, retry_after_s=1.0)
        if isinstance(answer[0], Exception):
            raise answer[0]
        return answer[0]

    @contextmanager
    def holding(self, grant: Grant) -> Iterator[None]:
        """Fetches of the grant's host on this thread use the grant instead of another slot."""
        held = self._held_here()
        held[grant.key] = grant
        try:
            yield
        finally:
            held.pop(grant.key, None)

    def held_on_this_thread(self, host: str) -> Grant | None:
        """The slot of `host` a `holding` on this thread lends, if any."""
        return self._held_here().get(KEY_PREFIX + host.lower())

    def _held_here(self) -> dict[str, Grant]:
        held: dict[str, Grant] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = {}
        return held

    # --- internals (`_lock` held where the name says `state` is read or changed)

    def _share(self, state: _Host) -> int:
        """How many of the host's slots this process may hold while others wait too."""
        limit = self.limit_for(state.name)
        return max(1, math.ceil(limit / (state.others_waiting + 1)))

    def _take_idle(self, state: _Host) -> Grant | None:
        now = time.monotonic()
        while state.idle and state.held > self._share(state):  # the limit was cut meanwhile
            grant, _since = state.idle.pop(0)
            state.held -= 1
            self._stale.append(grant)
        while state.idle:
            grant, _since = state.idle.pop()  # the most recently used first
            if grant.reusable_until > now:
                return grant
            state.held -= 1  # too old to reuse: the poller gives it back
            self._stale.append(grant)
        return None

    def _expired(self, state: _Host, now: float) -> list[_Waiter]:
        expired: list[_Waiter] = []
        while state.waiters and state.waiters[0].deadline <= now:
            expired.append(state.waiters.popleft())
        if state.waiters and state.waiters[-1].deadline <= now:  # a shorter wait behind
            keep = deque(w for w in state.waiters if w.deadline > now)
            expired += [w for w in state.waiters if w.deadline <= now]
            state.waiters = keep
        return expired

    def _take(self, state: _Host, count: int, *, waiting_after: bool) -> list[Grant]:
        """Ask Redis for `count` slots (already counted in `held`); returns those granted and
        un-counts the rest. Refreshes what this process knows of other waiters."""
        members = [uuid.uuid4().hex for _ in range(count)]
        key = KEY_PREFIX + state.name
        keys = [key, WAITERS_PREFIX + state.name]
        if self.limits is not None:
            keys.append(LIMIT_PREFIX + state.name)
        taken, others, limit = self._acquire(
            keys=keys,
            args=[
                self.hold_s,
                self.cap_for(state.name),
                self.process_id,
                WAITER_TTL_S,
                "1" if waiting_after else "0",
                *members,
            ],
            client=self.client,
        )
        if self.limits is not None:
            self.limits.learn(state.name, int(limit))
        until = time.monotonic() + self.reuse_for_s
        with self._lock:
            state.held -= count - int(taken)
            state.others_waiting = int(others)
            registered = waiting_after or int(taken) < count
            state.registered_at = time.monotonic() if registered else None
        return [Grant(key, member, until) for member in members[: int(taken)]]

    def _hand_renewed(self, state: _Host, grant: Grant, waiter: _Waiter) -> None:
        """A slot too old to serve another fetch as it is: extend its hold, then hand it on."""
        try:
            renewed = bool(self._renew(keys=[grant.key], args=[grant.member, self.hold_s]))
        except redis.RedisError:
            log.warning("could not renew a host slot", exc_info=True)
            renewed = False
        if renewed:
            grant.reusable_until = time.monotonic() + self.reuse_for_s
            _grant(waiter, grant)
            return
        with self._lock:  # the slot is gone (expired, Redis flushed): the waiter waits on
            state.held -= 1
            state.waiters.appendleft(waiter)
            self._start_poller()

    def _give_back(self, key: str, members: list[str]) -> None:
        try:
            self.client.zrem(key, *members)
        except redis.RedisError:  # the slots expire on their own meanwhile
            log.warning("could not give host slots back to Redis", exc_info=True)

    def _warn(self, message: str) -> None:
        """Log a poller failure with its traceback, at most once per WARN_EVERY_S."""
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning(message, exc_info=True)

    def _start_poller(self, *, wake: bool = False) -> None:
        if self._poller is None:
            self._poller = threading.Thread(
                target=self._poll_forever, name="host-slots", daemon=True
            )
            self._poller.start()
        elif wake:
            self._wake.notify()

    def _poll_forever(self) -> None:
        """Runs while requests wait or slots are kept idle; the next one restarts it."""
        while True:
            try:
                self.poll()
            except Exception:  # never let the thread die with requests waiting
                self._warn("host slot poller failed; trying again")
            with self._lock:
                if not any(s.waiters or s.idle for s in self._hosts.values()):
                    self._poller = None
                    return
                waiting = any(s.waiters for s in self._hosts.values())
                self._wake.wait(POLL_INTERVAL_S if waiting else self.keep_idle_s / 2)

    def poll(self, now: float | None = None) -> None:
        """One round: end overdue waits, hand idle slots to waiters, ask Redis for the slots
        waiters still need (as far as this process's share allows), give idle ones back."""
        now = time.monotonic() if now is None else now
        expired: list[tuple[str, list[_Waiter]]] = []
        handed: list[tuple[_Waiter, Grant]] = []
        asks: list[tuple[_Host, int]] = []
        stale: dict[str, list[str]] = {}
        unregister: list[_Host] = []
        with self._lock:
            for key, state in list(self._hosts.items()):
                expired.append((state.name, self._expired(state, now)))
                while state.waiters and state.idle:
                    grant = self._take_idle(state)
                    if grant is None:
                        break
                    handed.append((state.waiters.popleft(), grant))
                for grant, since in list(state.idle):
                    if since <= now - self.keep_idle_s or grant.reusable_until <= now:
                        state.idle.remove((grant, since))
                        state.held -= 1
                        stale.setdefault(key, []).append(grant.member)
                if state.waiters:
                    count = max(0, min(len(state.waiters), self._share(state) - state.held))
                    due = count > 0 and now >= state.next_ask
                    renewed_at = -math.inf if state.registered_at is None else state.registered_at
                    if due or now - renewed_at >= WAITER_REFRESH_S:
                        state.held += count
                        asks.append((state, count))
                elif state.registered_at is not None:
                    unregister.append(state)
                elif not state.held and not state.idle:
                    del self._hosts[key]
            for grant in self._stale:
                stale.setdefault(grant.key, []).append(grant.member)
            self._stale.clear()
        for host, waiters in expired:
            _busy(waiters, host)
        for waiter, grant in handed:
            _grant(waiter, grant)
        for key, members in stale.items():
            self._give_back(key, members)
        for state, count in asks:
            self._serve(state, count)
        for state in unregister:
            self._unregister(state)

    def _unregister(self, state: _Host) -> None:
        """No more waiters here: stop counting against the other processes' shares."""
        try:
            self.client.zrem(WAITERS_PREFIX + state.name, self.process_id)
        except redis.RedisError:  # the entry expires on its own
            self._warn(f"could not leave the waiters of {state.name}")
            return
        with self._lock:
            if not state.waiters:
                state.registered_at = None

    def _serve(self, state: _Host, count: int) -> None:
        try:
            grants = self._take(state, count, waiting_after=True)
        except redis.RedisError:
            with self._lock:
                state.held -= count
            self._warn(f"could not ask Redis for slots of {state.name}")
            return
        served: list[tuple[_Waiter, Grant]] = []
        with self._lock:
            if count and not grants:  # nothing free: ask this host less often
                state.next_ask = time.monotonic() + state.ask_interval
                state.ask_interval = min(state.ask_interval * 2, MAX_ASK_INTERVAL_S)
            elif grants:
                state.next_ask, state.ask_interval = 0.0, POLL_INTERVAL_S
            while grants and state.waiters:
                served.append((state.waiters.popleft(), grants.pop(0)))
            for grant in grants:  # the waiters left meanwhile: keep the slots idle
                state.idle.append((grant, time.monotonic()))
        for waiter, grant in served:
            _grant(waiter, grant)


def _grant(waiter: _Waiter, grant: Grant) -> None:
    WAITING.dec()
    WAITS.labels("granted").inc()
    waiter.callback(grant)


def _busy(waiters: list[_Waiter], host: str) -> None:
    if waiters:
        WAITING.dec(len(waiters))
        WAITS.labels("busy").inc(len(waiters))
    for waiter in waiters:
        # Come back soon, spread out so deferred tokens do not all return at once.
        waiter.callback(HostBusyError(host, retry_after_s=1.0 + random.random()))  # noqa: S311
