"""Each host's concurrency limit moves with what the host tells us (docs/host-slots.md#adaptive).

A limit lives in Redis, so every worker uses and moves the same number. It starts low
(4) and doubles each round trip of clean answers while it is used (slow start) up to the
host's cap (`METADATA_HOST_CONCURRENCY_LIMIT`, or the gateways' cap) or its first overload;
then:

- **Cut** when the host shows it is overloaded: it answers 429 or 5xx, times out, refuses
  the connection, or its latency climbs to several times its usual. The cut is taken from the
  number the host had in flight when it failed (not the limit, which can run ahead of it):
  halved at the end of slow start, x0.7 later, x0.9 for latency. One overload event sends many
  failures at once; only the first cuts, then the limit holds for about two round trips.
- **Grown** by one after a limit's worth of clean answers (additive increase), up to the cap,
  except just under the level where the host last failed: that level is tried again only
  after `probe_after` clean answers, so probing the host's capacity costs about one 429 per
  thousand requests. The remembered level is forgotten after a minute without failures, or
  once the host takes it.

This is AIMD, as TCP congestion control and Netflix's concurrency-limits library use: it
converges on a fair share of the host's capacity without knowing that capacity, needs only
what every answer already says, and one number per host in Redis. Fetches report their ends
in batches as large as the limit can use (docs/host-slots.md#adaptive): two answers in slow
start, a limit's worth below the cap, a second's worth at the cap; a failure at once.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.host_slot_keys import KEY_PREFIX, LIMIT_PREFIX

# A host nobody fetched from for this long starts again, at this limit (or its cap if lower),
# doubling each round trip until its first overload (slow start).
FORGET_AFTER_S = 3600
INITIAL_LIMIT = 4
# Clean answers of one host gathered in this process per report in slow start (each moves
# the limit by one: a larger batch would overshoot the host by as much), and the longest a
# report waits whatever the batch (at the cap, where nothing grows, the only rule).
SLOW_START_BATCH = 2
FLUSH_AFTER_S = 1.0

# KEYS: the host's limit hash, the host's slots (a sorted set scored by each hold's expiry).
# ARGV: cap, overloads, successes, latency_ms (mean of the successes), reason, cut factor,
#       cut factor in slow start, latency cut factor, cool-down s, forget-ceiling s,
#       answers before a probe, ttl s.
# Returns {limit (an integer, at least 1), successes to gather before the next report (0: by
# time only), latency in ms that makes a report due at once ('' while the usual is unknown)}.
_RECORD = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local cap = tonumber(ARGV[1])
local overloads = tonumber(ARGV[2])
local successes = tonumber(ARGV[3])
local latency = tonumber(ARGV[4])
local reason = ARGV[5]
local cut = tonumber(ARGV[6])
local slow_start_cut = tonumber(ARGV[7])
local latency_cut = tonumber(ARGV[8])
local cooldown = tonumber(ARGV[9])
local forget = tonumber(ARGV[10])
local probe_after = tonumber(ARGV[11])
local state = redis.call('HMGET', KEYS[1], 'limit', 'ceiling', 'clean', 'cut_at', 'base_ms')
local limit = tonumber(state[1]) or math.min(cap, INITIAL_LIMIT)
local ceiling = tonumber(state[2]) or 0
local clean = tonumber(state[3]) or 0
local cut_at = tonumber(state[4]) or 0
local base = tonumber(state[5])
if limit > cap then limit = cap end
local function cut_by(factor, why)
  -- One overload event, one cut: hold for about two of the host's round trips.
  local hold = cooldown
  if base ~= nil then hold = math.max(cooldown, base * 2 / 1000) end
  if now - cut_at < hold then return end
  -- From what the host had in flight when it failed (TCP's flight size), not from the limit,
  -- which can run ahead of it: the level that failed, remembered as the ceiling.
  local flight = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
  local failed_at = limit
  if flight > 0 and flight < limit then failed_at = flight end
  ceiling = failed_at
  limit = math.max(1, math.floor(failed_at * factor))
  clean = 0
  cut_at = now
  redis.call('HSET', KEYS[1], 'reason', why, 'last_cut_at', now)
end
if overloads > 0 then
  if cut_at == 0 then cut_by(slow_start_cut, reason) else cut_by(cut, reason) end
elseif successes > 0 then
  if base == nil or latency < base then
    base = latency
  else
    base = base + (latency - base) * 0.02
  end
  if latency > math.max(base * 4, base + 1000) then
    cut_by(latency_cut, 'latency')
  elseif cut_at == 0 then
    -- Slow start, until the first overload: one more per clean answer (double a round trip),
    -- but only over what is in flight: a limit running ahead of its use would let a burst of
    -- new fetches reach the host at once.
    local flight = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
    limit = math.min(cap, math.max(limit, flight + successes))
  else
    clean = clean + successes
    if ceiling > 0 and now - cut_at > forget then ceiling = 0 end
    -- One more per limit's worth of clean answers; just under the level that failed, only
    -- after probe_after of them (a probe of that level costs a 429 or so).
    local step = limit
    if limit + 1 == ceiling then step = math.max(limit, probe_after) end
    if clean >= step and limit < cap then
      if ceiling > 0 and limit >= ceiling then ceiling = 0 end  -- it took the level that failed
      limit = limit + 1
      clean = 0
    end
  end
end
redis.call('HSET', KEYS[1], 'limit', limit, 'ceiling', ceiling, 'clean', clean,
           'cut_at', cut_at, 'cap', cap, 'updated_at', now)
local alarm = ''
if base ~= nil then
  redis.call('HSET', KEYS[1], 'base_ms', base)
  alarm = tostring(math.max(base * 4, base + 1000))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[12]))
local batch = limit
if limit >= cap then batch = 0 elseif cut_at == 0 then batch = SLOW_START_BATCH end
return {math.floor(limit), batch, alarm}
""".replace("INITIAL_LIMIT", str(INITIAL_LIMIT)).replace("SLOW_START_BATCH", str(SLOW_START_BATCH))

LIMIT_REPORTS = Counter(
    "token_metadata_host_limit_reports",
    "Reports of fetch ends to the adaptive host limits, by what they were (ok, overload)",
    ["kind"],
)
# Hosts below their cap in the gauge, at most (the most throttled): label values stay few.
MAX_HOSTS_IN_METRICS = 50


class ThrottledHostsCollector(Collector):
    """`token_metadata_host_concurrency_limit{host}`: the limit of each host this process
    fetched from that is below its cap (most throttled first, at most MAX_HOSTS_IN_METRICS)."""

    def __init__(self) -> None:
        self.sources: weakref.WeakSet[AdaptiveLimits] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "token_metadata_host_concurrency_limit",
            "Adaptive concurrency limit of metadata hosts below their cap, as this process "
            "last learnt it",
            labels=["host"],
        )
        below: dict[str, float] = {}
        for source in list(self.sources):
            below.update(source.below_cap())
        ranked = sorted(below.items(), key=lambda item: item[1])[:MAX_HOSTS_IN_METRICS]
        for host, limit in ranked:
            family.add_metric([host], limit)
        yield family


THROTTLED_HOSTS = ThrottledHostsCollector()
REGISTRY.register(THROTTLED_HOSTS)


@dataclass(frozen=True)
class AimdRule:
    """How a limit moves; the defaults are documented in docs/host-slots.md#adaptive."""

    cut: float = 0.7  # on 429, 5xx, timeouts, refused connections
    # The first overload ends slow start, where the limit doubled during the last round trip:
    # half is what last worked (TCP's ssthresh = flight size / 2).
    slow_start_cut: float = 0.5
    latency_cut: float = 0.9  # on latency several times the host's usual
    # One overload event cuts once: no second cut within two of the host's usual round trips
    # (at least this long), as TCP cuts once per round trip.
    cooldown_s: float = 0.1
    forget_ceiling_s: float = 60.0
    # Clean answers just under the level that last failed before that level is tried again.
    probe_after: int = 1000


@dataclass
class _Pending:
    since: float
    successes: int = 0
    latency_ms: float = 0.0  # their sum


@dataclass
class _Known:
    """What the last report told this process of a host."""

    batch: int = SLOW_START_BATCH  # successes per report; 0: by time only
    alarm_ms: float = float("inf")  # a mean latency above this is reported at once


class AdaptiveLimits:
    """The current limit of each host, shared through Redis; fetches report how they ended."""

    def __init__(
        self,
        client: redis.Redis,
        cap_for: Callable[[str], int],
        rule: AimdRule | None = None,
        *,
        flush_every: int | None = None,
    ) -> None:
        self.client = client
        self.cap_for = cap_for
        self.rule = rule or AimdRule()
        # Successes per report whatever the limit (tests); None: as the limit can use them.
        self.flush_every = flush_every
        self._record = client.register_script(_RECORD)
        self._limits: dict[str, int] = {}
        self._known: dict[str, _Known] = {}
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        THROTTLED_HOSTS.sources.add(self)

    def below_cap(self) -> dict[str, float]:
        """Hosts whose last known limit is below their cap, with that limit."""
        with self._lock:
            known = dict(self._limits)
        return {host: limit for host, limit in known.items() if limit < self.cap_for(host)}

    def limit(self, host: str) -> int:
        """The limit this process last learnt for `host` (where a new host starts before)."""
        host = host.lower()
        with self._lock:
            known = self._limits.get(host)
        cap = self.cap_for(host)
        return min(cap, INITIAL_LIMIT) if known is None else max(1, min(known, cap))

    def learn(self, host: str, limit: int) -> None:
        """What Redis said the limit is (the slot script returns it with every grant)."""
        host = host.lower()
        limit = int(limit)
        with self._lock:
            before = self._limits.get(host)
            self._limits[host] = limit
            known = self._known.get(host)
            if known is not None and before != limit and known.batch == 0:
                # Cut elsewhere while this process reported by time (at the cap): report a
                # limit's worth again, as growth needs.
                known.batch = max(1, limit) if limit < self.cap_for(host) else 0

    def succeeded(self, host: str, latency_s: float) -> None:
        """A clean answer in `latency_s`; reported with others of the host."""
        host = host.lower()
        now = time.monotonic()
        with self._lock:
            pending = self._pending.get(host)
            if pending is None:
                pending = self._pending[host] = _Pending(now)
            pending.successes += 1
            pending.latency_ms += latency_s * 1000
            known = self._known.get(host)
            batch = self.flush_every
            if batch is None:
                batch = SLOW_START_BATCH if known is None else known.batch
            due = (
                0 < batch <= pending.successes
                or now - pending.since >= FLUSH_AFTER_S
                or (known is not None and pending.latency_ms > known.alarm_ms * pending.successes)
            )
            if due:
                del self._pending[host]
        if due:
            mean = pending.latency_ms / pending.successes
            self._report(host, 0, pending.successes, mean, "ok")

    def overloaded(self, host: str, reason: str) -> None:
        """The host answered 429 or 5xx, timed out or refused us: reported at once."""
        host = host.lower()
        with self._lock:
            self._pending.pop(host, None)  # clean answers from before the overload count no more
        self._report(host, 1, 0, 0.0, reason)

    def _report(
        self, host: str, overloads: int, successes: int, latency_ms: float, why: str
    ) -> None:
        rule = self.rule
        try:
            limit, batch, alarm = self._record(
                keys=[LIMIT_PREFIX + host, KEY_PREFIX + host],
                args=[
                    self.cap_for(host),
                    overloads,
                    successes,
                    f"{latency_ms:.3f}",
                    why,
                    rule.cut,
                    rule.slow_start_cut,
                    rule.latency_cut,
                    rule.cooldown_s,
                    rule.forget_ceiling_s,
                    rule.probe_after,
                    FORGET_AFTER_S,
                ],
                client=self.client,
            )
        except redis.RedisError:
            return  # the limit stays where it was; slots keep working on the cap
        LIMIT_REPORTS.labels("overload" if overloads else "ok").inc()
        with self._lock:
            self._limits[host] = int(limit)
            self._known[host] = _Known(int(batch), float(alarm) if alarm else float("inf"))
