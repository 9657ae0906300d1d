"""An ipfs:// or ar:// document fetched through several gateways: the healthiest first, the
next on the first's failure, and a second at once when the first is slower than usual
(hedging); the first good answer wins. See docs/gateways.md.

Each request is an ordinary `polite_fetch` (the host's rate limit, slot and the guarded
fetcher; for IPFS, a block checked against its CID where one block holds the file:
`verified_fetch`) on this fetcher's own threads, so the caller waits only for the first good
answer. A losing request is cancelled through the fetcher's progress callback, which libcurl
calls on every chunk and at least once a second: it ends within a second, releasing its slot
then.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from threading import Event

from shared.errors import (
    ContentMismatchError,
    FetchCancelledError,
    HostBusyError,
    MetadataConnectionError,
    MetadataHttpError,
    MetadataTimeoutError,
    RetryableJobError,
    TooManyRequestsError,
)
from shared.indexing.host_slots import Grant, HostSlots
from shared.indexing.polite_fetch import polite_fetch
from shared.indexing.rate_limits import RateLimitedHosts
from shared.indexing.verified_fetch import MISMATCHED, fetch_checked
from shared.metadata.fetch import Fetched, MetadataFetcher
from shared.metadata.gateways import GatewayPool, gateway_host
from shared.metadata.outcomes import classify_fetch
from shared.metadata.uris import FetchableUrl

# Another gateway may serve what this one could not: try the next on these.
_FAILOVER = (RetryableJobError, MetadataTimeoutError, MetadataHttpError)
MAX_IN_FLIGHT = 2
# Hedges a process may send: this share of its gateway requests, saved up to HEDGE_BURST. A
# busy worker makes its own latency tail; hedging all of it would add load where it hurts.
HEDGE_SHARE = 0.05
HEDGE_BURST = 10.0


class HedgeBudget:
    """A token bucket: each document earns HEDGE_SHARE of a hedge, each hedge spends one."""

    def __init__(self, share: float = HEDGE_SHARE, burst: float = HEDGE_BURST) -> None:
        self.share = share
        self.burst = burst
        self._tokens = burst
        self._lock = threading.Lock()

    def earn(self) -> None:
        with self._lock:
            self._tokens = min(self.burst, self._tokens + self.share)

    def spend(self) -> bool:
        with self._lock:
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


@dataclass
class _Attempt:
    target: FetchableUrl
    cancelled: Event | None = field(default_factory=Event)  # None: not cancellable
    started: float = field(default_factory=time.monotonic)


class GatewayFetcher:
    """Fetches through the configured gateways (or, for any other URL, as `polite_fetch`)."""

    def __init__(
        self,
        fetcher: MetadataFetcher,
        pool: GatewayPool,
        rate_limits: RateLimitedHosts | None,
        host_slots: HostSlots | None,
        threads: int = 32,
        hedges: HedgeBudget | None = None,
        *,
        verify: bool = True,
    ) -> None:
        self.fetcher = fetcher
        self.pool = pool
        self.rate_limits = rate_limits
        self.host_slots = host_slots
        self.hedges = hedges or HedgeBudget()
        # Check ipfs:// content against its CID where one block allows (IPFS_VERIFY_CONTENT).
        self.verify = verify
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="gateway")

    def fetch(
        self, target: FetchableUrl, max_bytes: int | None = None, wait_s: float = 0.0
    ) -> Fetched:
        """The body of the first good answer; with one gateway, one `polite_fetch` on this
        thread (counted in the gateway's metrics and health)."""
        if not target.other_gateways:
            return self._direct(target, max_bytes, wait_s)
        return _Race(self, self._ordered(target), max_bytes, wait_s).run()

    def first_choice(self, target: FetchableUrl) -> FetchableUrl:
        """The gateway a fetch of `target` starts with: the healthiest not rate limited
        (raises the first one's RetryableJobError when all are)."""
        ordered = self.pool.order(target.through_every_gateway())
        if self.rate_limits is None:
            return ordered[0]
        first_error: RetryableJobError | None = None
        for candidate in ordered:
            try:
                self.rate_limits.check(gateway_host(candidate))
            except RetryableJobError as exc:
                first_error = first_error or exc
                continue
            return candidate
        assert first_error is not None  # noqa: S101 - the loop saw at least one candidate
        raise first_error

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _ordered(self, target: FetchableUrl) -> list[FetchableUrl]:
        """Healthiest first, except that a gateway this thread already holds a slot of (the
        one its token waited for) goes first."""
        ordered = self.pool.order(target.through_every_gateway())
        held = [c for c in ordered if self._held(c) is not None]
        return held[:1] + [c for c in ordered if c not in held[:1]]

    def _held(self, target: FetchableUrl) -> Grant | None:
        if self.host_slots is None:
            return None
        return self.host_slots.held_on_this_thread(gateway_host(target))

    def _direct(self, target: FetchableUrl, max_bytes: int | None, wait_s: float) -> Fetched:
        if target.gateway is None:
            return polite_fetch(
                self.fetcher, target, self.rate_limits, self.host_slots, max_bytes, wait_s=wait_s
            )
        return self._attempt(_Attempt(target, cancelled=None), max_bytes, wait_s, None)

    def _attempt(
        self, attempt: _Attempt, max_bytes: int | None, wait_s: float, grant: Grant | None
    ) -> Fetched:
        """One gateway's request, its end counted and reported to the gateway's health."""
        host = gateway_host(attempt.target)
        attempt.started = time.monotonic()
        holding = self.host_slots.holding(grant) if self.host_slots and grant else nullcontext()

        def fetch(target: FetchableUrl, limit: int) -> Fetched:
            return polite_fetch(
                self.fetcher,
                target,
                self.rate_limits,
                self.host_slots,
                limit,
                wait_s=wait_s,
                cancelled=attempt.cancelled,
            )

        limit = self.fetcher.max_bytes if max_bytes is None else max_bytes
        try:
            with holding:
                body = fetch_checked(fetch, attempt.target, limit, verify=self.verify)
        except FetchCancelledError:
            # Slower than another gateway: its wait so far is a (low) latency sample.
            self.pool.record(host, "cancelled", time.monotonic() - attempt.started)
            raise
        except Exception as exc:
            outcome = MISMATCHED if isinstance(exc, ContentMismatchError) else classify_fetch(exc)
            self.pool.record(host, outcome, failed=gateway_at_fault(exc))
            raise
        self.pool.record(host, "ok", time.monotonic() - attempt.started)
        return body


class _Race:
    """One document through the ordered gateways, at most MAX_IN_FLIGHT requests at once."""

    def __init__(
        self, owner: GatewayFetcher, order: list[FetchableUrl], max_bytes: int | None, wait_s: float
    ) -> None:
        self.owner = owner
        self.order = order
        self.max_bytes = max_bytes
        self.wait_s = wait_s
        self.running: dict[Future[Fetched], _Attempt] = {}
        self.ended: queue.SimpleQueue[Future[Fetched]] = queue.SimpleQueue()
        self.may_hedge = True
        self.tried = 0
        self.errors: list[Exception] = []
        self.not_found: list[str] = []  # gateways that answered 4xx: at fault if another served

    def run(self) -> Fetched:
        self.owner.hedges.earn()
        self._launch()
        while self.running:
            try:
                future = self.ended.get(timeout=self._hedge_in())
            except queue.Empty:  # the first is slower than usual: ask the next one too
                self.may_hedge = self.owner.hedges.spend()
                if self.may_hedge:
                    self._launch()
                continue
            attempt = self.running.pop(future)
            try:
                body = future.result()
            except _FAILOVER as exc:
                self._failed(attempt, exc)
                continue
            except BaseException:
                self._cancel_rest()
                raise
            self._cancel_rest()
            for host in self.not_found:
                self.owner.pool.blame(host)
            return body
        raise self._error()

    def _hedge_in(self) -> float | None:
        """Seconds until the running request's hedge is due; None when none may be sent."""
        if not self.may_hedge or len(self.running) != 1 or self.tried >= len(self.order):
            return None
        (attempt,) = self.running.values()
        due = attempt.started + self.owner.pool.hedge_after_s(gateway_host(attempt.target))
        return max(0.0, due - time.monotonic())

    def _launch(self) -> None:
        """Start the next gateway's request. The first waits for a slot as the caller would;
        a hedge or a failover takes a free slot or skips the gateway (HostBusyError)."""
        target = self.order[self.tried]
        wait_s = self.wait_s if self.tried == 0 else 0.0
        self.tried += 1
        attempt = _Attempt(target)
        grant = self.owner._held(target)
        future = self.owner._threads.submit(
            self.owner._attempt, attempt, self.max_bytes, wait_s, grant
        )
        self.running[future] = attempt
        future.add_done_callback(self.ended.put)

    def _failed(self, attempt: _Attempt, exc: Exception) -> None:
        self.errors.append(exc)
        if isinstance(exc, MetadataHttpError) and not gateway_at_fault(exc):
            self.not_found.append(gateway_host(attempt.target))
        if self.tried < len(self.order) and len(self.running) < MAX_IN_FLIGHT:
            self._launch()

    def _cancel_rest(self) -> None:
        for attempt in self.running.values():
            if attempt.cancelled is not None:
                attempt.cancelled.set()
        self.running.clear()

    def _error(self) -> Exception:
        """What every gateway failing means for the token: come back later if any gateway
        only put us off, retry at once if any timed out, else the healthiest one's error."""
        for kind in (RetryableJobError, MetadataTimeoutError):
            found = next((e for e in self.errors if isinstance(e, kind)), None)
            if found is not None:
                return found
        return self.errors[0]


def gateway_at_fault(exc: BaseException) -> bool:
    """Whether a failed request says the gateway is unwell (timed out, gave no answer, 5xx,
    429, blocked, bytes that are not the CID's) rather than the document (4xx, too large) or
    our own limits (busy, skipped)."""
    if isinstance(exc, ContentMismatchError):
        return True
    if isinstance(exc, TooManyRequestsError):
        return True
    if isinstance(exc, HostBusyError):
        return isinstance(exc.__cause__, TooManyRequestsError)
    if isinstance(exc, MetadataTimeoutError | MetadataConnectionError):
        return True
    if isinstance(exc, MetadataHttpError):
        return exc.status is None or exc.status >= 500
    return False
