"""Which of several configured gateways a document is asked of first, and when to ask a second.

Each gateway (by host name) has a health: an exponentially weighted latency, p90 latency and
error rate, kept in a Redis hash so that every worker orders the gateways the same way.
Answers are reported in batches (`FLUSH_EVERY` answers or `FLUSH_AFTER_S`, a failure at once)
and each process re-reads the hashes at most every `REFRESH_S`, so the bookkeeping costs Redis
a call per several fetches. See docs/gateways.md.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis
from prometheus_client import Counter, Gauge

from shared.metadata.uris import FetchableUrl

HEALTH_PREFIX = "token-metadata:gateway-health:"
# Each answer moves the averages this much; errors are also forgotten with time, so a gateway
# that failed is tried again first a while after it stopped being asked.
SMOOTHING = 0.1
ERROR_HALF_LIFE_S = 30.0
FORGET_AFTER_S = 3600
REFRESH_S = 0.5
FLUSH_EVERY = 8
FLUSH_AFTER_S = 1.0
# The latency at which a gateway's health halves (with no errors).
LATENCY_SCALE_MS = 250.0
# The gateway asked first stays first until another one's health is better than its own by
# more than this factor, so near-equal gateways do not swap places (and connections, and
# their adaptive limits' warm-up) on every bit of noise.
STAY_FIRST_WITHIN = 1.5
# The hedge is sent after the first gateway's recent p90 latency, within these bounds; a
# gateway not measured yet gets UNKNOWN_P90_S.
HEDGE_FLOOR_S = 0.05
HEDGE_CEILING_S = 2.0
UNKNOWN_P90_S = 0.5
# A gateway not measured yet is taken to be at least as healthy as one answering in this
# long without errors: a first choice whose health is under this one's / STAY_FIRST_WITHIN
# (slower than about 275 ms, or failing) gives way to it.
UNKNOWN_LATENCY_MS = 100.0

# KEYS: the gateway's health hash. ARGV: answers, errors, successes, mean latency ms of the
# successes, p90 latency ms of the successes, smoothing, error half-life s, ttl s.
# Returns the new {latency_ms, p90_ms, error_rate} as strings ('' when unknown).
_RECORD = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local answers = tonumber(ARGV[1])
local errors = tonumber(ARGV[2])
local successes = tonumber(ARGV[3])
local alpha = tonumber(ARGV[6])
local state = redis.call('HMGET', KEYS[1], 'latency_ms', 'p90_ms', 'error_rate', 'updated_at')
local rate = tonumber(state[3]) or 0
local updated = tonumber(state[4]) or now
rate = rate * math.pow(0.5, math.max(0, now - updated) / tonumber(ARGV[7]))
local keep = math.pow(1 - alpha, answers)
rate = rate * keep + (errors / answers) * (1 - keep)
redis.call('HSET', KEYS[1], 'error_rate', rate, 'updated_at', now)
if successes > 0 then
  local keep_ok = math.pow(1 - alpha, successes)
  local fields = {'latency_ms', 'p90_ms'}
  for i = 1, 2 do
    local sample = tonumber(ARGV[3 + i])
    local old = tonumber(state[i])
    if old == nil then old = sample end
    redis.call('HSET', KEYS[1], fields[i], old * keep_ok + sample * (1 - keep_ok))
  end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
local now_state = redis.call('HMGET', KEYS[1], 'latency_ms', 'p90_ms')
return {tostring(now_state[1] or ''), tostring(now_state[2] or ''), tostring(rate)}
"""

GATEWAY_REQUESTS = Counter(
    "token_metadata_gateway_requests",
    "Requests to each configured IPFS or Arweave gateway, by outcome (ok, timeout, "
    "http_error, rate_limited, deferred: skipped without a request, cancelled: lost a race, "
    "mismatched: IPFS bytes that are not the CID's)",
    ["gateway", "outcome"],
)
IPFS_CONTENT = Counter(
    "token_metadata_ipfs_content",
    "IPFS documents and images each gateway served, by outcome: verified (the block hashed "
    "to its CID), unverified (not checkable: a path after the CID, a file of several blocks, "
    "no raw block support), mismatched (bytes that are not the CID's: the next gateway asked)",
    ["gateway", "outcome"],
)
GATEWAY_HEALTH = Gauge(
    "token_metadata_gateway_health",
    "Health of each configured gateway as this process last read it: 1 is fast and "
    "error-free; halved by 250 ms of latency or by a 50% error rate",
    ["gateway"],
)


@dataclass(frozen=True)
class GatewayHealth:
    """What the workers together learnt of one gateway lately."""

    latency_ms: float | None = None
    p90_ms: float | None = None
    error_rate: float = 0.0

    @property
    def score(self) -> float:
        """1 for an error-free, instant gateway; lower as it errs or slows."""
        latency = self.latency_ms or 0.0
        return (1.0 - min(1.0, self.error_rate)) / (1.0 + latency / LATENCY_SCALE_MS)


_UNKNOWN_SCORE = GatewayHealth(UNKNOWN_LATENCY_MS).score


@dataclass
class _Pending:
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)


def gateway_host(target: FetchableUrl) -> str:
    """The gateway's name in health, slots and metrics: its URL's host name."""
    _scheme, slashes, rest = target.url.partition("://")
    if not slashes:
        return (urlsplit(target.url).hostname or "").lower()
    return _host_of_authority(rest.split("/", 1)[0])


@functools.lru_cache(maxsize=256)
def _host_of_authority(authority: str) -> str:
    """The host name in a URL's `user@host:port` part (up to its first slash: a query or a
    fragment without a path is dropped by urlsplit). A document's race asks for its
    gateways' names a dozen times, and parsing each URL anew cost more than the rest of
    the race's bookkeeping; a few gateways give a few authorities."""
    return (urlsplit(f"//{authority}").hostname or "").lower()


class GatewayPool:
    """The configured gateways' health, shared through Redis: `order` and `hedge_after_s`
    read it, `record` reports a request's end."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        refresh_s: float = REFRESH_S,
        flush_every: int = FLUSH_EVERY,
        unknown_p90_s: float = UNKNOWN_P90_S,
    ) -> None:
        self.client = client
        self.refresh_s = refresh_s
        self.flush_every = flush_every
        self.unknown_p90_s = unknown_p90_s
        self._record = client.register_script(_RECORD)
        self._health: dict[str, GatewayHealth] = {}
        self._read_at: dict[str, float] = {}
        self._pending: dict[str, _Pending] = {}
        self._first: dict[tuple[str, ...], str] = {}  # the first choice of each gateway list
        self._lock = threading.Lock()
        # One thread re-reads; the others go on with what is known (as RateLimitedHosts does).
        self._refreshing = threading.Lock()

    def order(self, candidates: Sequence[FetchableUrl]) -> list[FetchableUrl]:
        """The candidates, healthiest first (equal ones in the configured order), except that
        the one first last time stays first while it is nearly as healthy as the best."""
        hosts = [gateway_host(c) for c in candidates]
        health = self.health(hosts)
        scores = _scores(health)
        ranked = sorted(range(len(hosts)), key=lambda i: -scores[hosts[i]])
        key = tuple(hosts)
        with self._lock:
            kept = self._first.get(key)
            best = hosts[ranked[0]]
            if kept in hosts and _stays_first(scores, kept, best):
                ranked.remove(hosts.index(kept))
                ranked.insert(0, hosts.index(kept))
            else:
                self._first[key] = best
        return [candidates[i] for i in ranked]

    def about_as_healthy(self, host: str, best: str) -> bool:
        """Whether `host` is healthy enough to stay first instead of `best` (the rule that
        keeps a first choice first)."""
        return _stays_first(_scores(self.health([host, best])), host, best)

    def hedge_after_s(self, host: str) -> float:
        """How long the gateway may take before a second one is asked too: its p90 latency."""
        p90_ms = self.health([host])[host].p90_ms
        if p90_ms is None:
            return self.unknown_p90_s
        return min(HEDGE_CEILING_S, max(HEDGE_FLOOR_S, p90_ms / 1000))

    def measured(self, host: str) -> bool:
        """Whether the gateway's latency is known (an answer of it has been counted)."""
        return self.health([host])[host].latency_ms is not None

    def health(self, hosts: Sequence[str]) -> dict[str, GatewayHealth]:
        """The hosts' health, re-read from Redis when older than `refresh_s`."""
        now = time.monotonic()
        with self._lock:
            stale = [h for h in hosts if now - self._read_at.get(h, -math.inf) >= self.refresh_s]
        if stale and self._refreshing.acquire(blocking=False):
            try:
                self._refresh(stale)
            finally:
                self._refreshing.release()
        with self._lock:
            return {host: self._health.get(host, GatewayHealth()) for host in hosts}

    def record(
        self, host: str, outcome: str, latency_s: float | None = None, *, failed: bool = False
    ) -> None:
        """Count one request; a failure of the gateway's own (`failed`) or an answer's latency
        moves its health (a request that ended otherwise, e.g. a 404, moves nothing)."""
        GATEWAY_REQUESTS.labels(host, outcome).inc()
        if failed or latency_s is not None:
            self._note(host, latency_s, failed=failed)

    def blame(self, host: str) -> None:
        """A request already counted turns out to be the gateway's fault (it answered 404 for
        a document another gateway served): its health learns it."""
        self._note(host, None, failed=True)

    def _note(self, host: str, latency_s: float | None, *, failed: bool) -> None:
        now = time.monotonic()
        with self._lock:
            if failed:  # a gateway that fails keeps its place no longer than its health does
                self._first = {k: v for k, v in self._first.items() if v != host}
            pending = self._pending.setdefault(host, _Pending(since=now))
            if failed:
                pending.errors += 1
            else:
                pending.latencies_ms.append((latency_s or 0.0) * 1000)
            answers = pending.errors + len(pending.latencies_ms)
            # A gateway this process has no latency for yet reports at once: its first
            # answers decide whether it should be first (a slow gateway configured first is
            # otherwise asked for a second or more before its latency is known).
            known = self._health.get(host)
            unmeasured = known is None or known.latency_ms is None
            due = (
                failed
                or unmeasured
                or answers >= self.flush_every
                or now - pending.since >= FLUSH_AFTER_S
            )
            if due:
                del self._pending[host]
        if due:
            self._report(host, pending)

    def _report(self, host: str, pending: _Pending) -> None:
        latencies = sorted(pending.latencies_ms)
        mean = sum(latencies) / len(latencies) if latencies else 0.0
        p90 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.9))] if latencies else 0.0
        answers = pending.errors + len(latencies)
        try:
            latency_ms, p90_ms, rate = self._record(
                keys=[HEALTH_PREFIX + host],
                args=[
                    answers,
                    pending.errors,
                    len(latencies),
                    f"{mean:.3f}",
                    f"{p90:.3f}",
                    SMOOTHING,
                    ERROR_HALF_LIFE_S,
                    FORGET_AFTER_S,
                ],
                client=self.client,
            )
        except redis.RedisError:
            return  # the order stays as it was; fetches go on
        health = _health([latency_ms or None, p90_ms or None, rate, None], now=0.0)
        with self._lock:  # this process goes by what it just learnt, without a read
            self._health[host] = health
        GATEWAY_HEALTH.labels(host).set(health.score)

    def _refresh(self, hosts: list[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        for host in hosts:
            pipe.hmget(HEALTH_PREFIX + host, "latency_ms", "p90_ms", "error_rate", "updated_at")
        try:
            (seconds, micros), *rows = pipe.execute()
        except redis.RedisError:  # keep what was known: a Redis outage must not stop fetches
            with self._lock:
                self._read_at.update((host, time.monotonic()) for host in hosts)
            return
        now = seconds + micros / 1_000_000
        read = {host: _health(row, now) for host, row in zip(hosts, rows, strict=True)}
        with self._lock:
            self._health.update(read)
            for host in hosts:
                self._read_at[host] = time.monotonic()
        for host, health in read.items():
            GATEWAY_HEALTH.labels(host).set(health.score)


def _scores(health: dict[str, GatewayHealth]) -> dict[str, float]:
    """Each gateway's score. One not measured yet counts as good as the best measured one,
    so it is tried through failovers and hedges rather than taking first requests from a
    good gateway; but at least as good as a gateway answering in UNKNOWN_LATENCY_MS, so a
    slow or failing first choice gives way to it at once (and it is measured)."""
    known = [h.score for h in health.values() if h.latency_ms is not None or h.error_rate]
    unknown = max([*known, _UNKNOWN_SCORE]) if known else 1.0
    return {
        host: h.score if h.latency_ms is not None or h.error_rate else unknown
        for host, h in health.items()
    }


def _stays_first(scores: dict[str, float], host: str, best: str) -> bool:
    """Whether `host` is within STAY_FIRST_WITHIN of the best gateway's health."""
    return scores[host] * STAY_FIRST_WITHIN >= scores[best]


def _health(row: list[bytes | str | None], now: float) -> GatewayHealth:
    latency, p90, rate, updated = (float(v) if v is not None else None for v in row)
    if rate is None:
        return GatewayHealth(latency, p90)
    age = max(0.0, now - (updated if updated is not None else now))
    return GatewayHealth(latency, p90, rate * 0.5 ** (age / ERROR_HALF_LIFE_S))
