"""An ipfs:// or ar:// document fetched through several gateways: the healthiest first, the
next on the first's failure, and a second at once when the first is slower than usual
(hedging); the first good answer wins. See docs/gateways.md#hedging.

Each request is an ordinary `polite_fetch` (the host's rate limit, slot and the guarded
fetcher; for IPFS, a block checked against its CID where one block holds the file:
`verified_fetch`). The first runs on the calling thread, as a fetch through one gateway
does: the common case (it answers before its hedge is due) costs no thread hop. A hedge is
started by one timer thread, a hedge or a failover runs on this fetcher's threads, and a
losing request is cancelled at once (`Cancellation` shuts its sockets down), so the caller
returns as soon as the race is won, releasing the loser's slot then.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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
from shared.indexing.due_timers import DueTimer, DueTimers
from shared.indexing.host_slots import HostSlots
from shared.indexing.polite_fetch import polite_fetch
from shared.indexing.rate_limits import RateLimitedHosts
from shared.indexing.verified_fetch import MISMATCHED, fetch_checked
from shared.metadata.fetch import Cancellation, Fetched, MetadataFetcher
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
# How much longer than its requests may take a caller waits for a race before giving up.
GIVE_UP_GUARD_S = 5.0


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


@dataclass(eq=False)
class _Attempt:
    target: FetchableUrl
    cancelled: Cancellation | None = field(default_factory=Cancellation)  # None: not cancellable
    started: float = field(default_factory=time.monotonic)
    hedge_after_s: float | None = None  # None: no hedge may follow this one
    hedge: DueTimer | None = None
    # A request to a gateway not measured yet is not cancelled when another wins: its answer
    # is how the gateway gets measured.
    let_finish: bool = False


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
        # Hedges and failovers run here; the first request runs on the caller's thread.
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="gateway")
        self._hedge_timers = DueTimers("gateway-hedges")

    def fetch(
        self, target: FetchableUrl, max_bytes: int | None = None, wait_s: float = 0.0
    ) -> Fetched:
        """The body of the first good answer; the first request on this thread (with one
        gateway, the only one: counted in the gateway's metrics and health)."""
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
        self._hedge_timers.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _ordered(self, target: FetchableUrl) -> list[FetchableUrl]:
        """Healthiest first, except that a gateway this thread already holds a slot of (the
        one its token waited for) goes first while it is still about as healthy as the best:
        the first request runs on this thread, in that slot. A token that queued for the
        first choice before its answers showed it slow asks the better one instead (the
        held slot is given back when the token is done)."""
        ordered = self.pool.order(target.through_every_gateway())
        held = [c for c in ordered[1:] if self._held(c)][:1]
        if held and not self.pool.about_as_healthy(gateway_host(held[0]), gateway_host(ordered[0])):
            held = []
        return held + [c for c in ordered if c not in held]

    def _held(self, target: FetchableUrl) -> bool:
        if self.host_slots is None:
            return False
        return self.host_slots.held_on_this_thread(gateway_host(target)) is not None

    def _direct(self, target: FetchableUrl, max_bytes: int | None, wait_s: float) -> Fetched:
        if target.gateway is None:
            return polite_fetch(
                self.fetcher, target, self.rate_limits, self.host_slots, max_bytes, wait_s=wait_s
            )
        return self._attempt(_Attempt(target, cancelled=None), max_bytes, wait_s)

    def _attempt(self, attempt: _Attempt, max_bytes: int | None, wait_s: float) -> Fetched:
        """One gateway's request, on this thread (its slot: one this thread holds, or one it
        waits up to `wait_s` for), its end counted and reported to the gateway's health."""
        host = gateway_host(attempt.target)
        attempt.started = time.monotonic()

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
            body = fetch_checked(fetch, attempt.target, limit, verify=self.verify)
        except FetchCancelledError:
            self.pool.record(host, "cancelled", _lost_after(attempt))
            raise
        except Exception as exc:
            outcome = MISMATCHED if isinstance(exc, ContentMismatchError) else classify_fetch(exc)
            self.pool.record(host, outcome, failed=gateway_at_fault(exc))
            raise
        # The gateway's latency is its answer's time on the wire: a wait for one of its slots
        # is our own queue (every token starting at once queues on the first choice), and
        # counting it made the first choice look slow and moved documents to a gateway that
        # only hedges had measured (docs/gateways.md#health).
        waited = time.monotonic() - attempt.started
        self.pool.record(host, "ok", waited if body.elapsed_s is None else body.elapsed_s)
        return body


class _Race:
    """One document through the ordered gateways, at most MAX_IN_FLIGHT requests at once.

    The first request runs on the calling thread, as with one gateway. Its hedge is a timer
    (the fetcher's one timer thread) that, once due, sends the next gateway's request to the
    fetcher's threads; a failover goes there too. Whichever request ends the race (a good
    answer, an error that no other gateway can mend, or the last failure) decides it under
    `lock` and cancels the others; the caller returns once its own request has ended (at
    once when cancelled) and the race is decided."""

    def __init__(
        self, owner: GatewayFetcher, order: list[FetchableUrl], max_bytes: int | None, wait_s: float
    ) -> None:
        self.owner = owner
        self.order = order
        self.max_bytes = max_bytes
        self.wait_s = wait_s
        self.lock = threading.Lock()
        self.running: list[_Attempt] = []
        self.may_hedge = True
        self.tried = 0
        self.errors: list[Exception] = []
        self.not_found: list[str] = []  # gateways that answered 4xx: at fault if another served
        self.outcome: Fetched | BaseException | None = None
        self.decided = threading.Event()

    def run(self) -> Fetched:
        self.owner.hedges.earn()
        with self.lock:
            first = self._start()
        try:
            body = self.owner._attempt(first, self.max_bytes, self.wait_s)
        except BaseException as exc:
            self._ended(first, exc)
        else:
            self._ended(first, body)
        # At once, unless the first failed and another gateway is still being asked.
        if not self.decided.wait(self._longest_s()):
            self._give_up()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None  # noqa: S101 - decided means an outcome
        for host in self.not_found:
            self.owner.pool.blame(host)
        return self.outcome

    def _longest_s(self) -> float:
        """Longer than the race can last: each gateway's request in turn, each of two
        exchanges (a block, then the file) of at most the fetcher's total timeout."""
        return 2 * self.owner.fetcher.total_timeout_s * len(self.order) + GIVE_UP_GUARD_S

    def _give_up(self) -> None:
        """A safety net: a request that never reported its end must not hold the token."""
        with self.lock:
            if not self.decided.is_set():
                self._decide(MetadataTimeoutError(f"No gateway answered {self.order[0].url}"))

    def _start(self) -> _Attempt:
        """The next gateway's request (not started yet), its hedge scheduled if one may follow."""
        attempt = _Attempt(self.order[self.tried])
        self.tried += 1
        self.running.append(attempt)
        self._schedule_hedge()
        return attempt

    def _schedule_hedge(self) -> None:
        """When a single request runs and another gateway is left, ask that one too if the
        request is not done after its gateway's p90 latency."""
        if not self.may_hedge or len(self.running) != 1 or self.tried >= len(self.order):
            return
        (attempt,) = self.running
        if attempt.hedge is not None:
            return
        if attempt.hedge_after_s is None:
            attempt.hedge_after_s = self.owner.pool.hedge_after_s(gateway_host(attempt.target))
        due = attempt.started + attempt.hedge_after_s
        attempt.hedge = self.owner._hedge_timers.call_at(due, lambda: self._hedge_due(attempt))

    def _hedge_due(self, attempt: _Attempt) -> None:
        """On the timer thread: the request is slower than usual; ask the next gateway too."""
        with self.lock:
            attempt.hedge = None
            if self.decided.is_set() or self.running != [attempt]:
                return
            if time.monotonic() < attempt.started + (attempt.hedge_after_s or 0.0):
                self._schedule_hedge()  # it waited on the fetcher's threads: started later
                return
            self.may_hedge = self.owner.hedges.spend()
            if self.may_hedge and self.tried < len(self.order):
                self._launch()

    def _launch(self) -> None:
        """Start the next gateway's request on the fetcher's threads: a hedge or a failover
        takes a free slot of its gateway or skips it (HostBusyError)."""
        attempt = self._start()
        attempt.let_finish = not self.owner.pool.measured(gateway_host(attempt.target))
        self.owner._threads.submit(self._run_elsewhere, attempt)

    def _run_elsewhere(self, attempt: _Attempt) -> None:
        try:
            body = self.owner._attempt(attempt, self.max_bytes, 0.0)
        except BaseException as exc:
            self._ended(attempt, exc)
        else:
            self._ended(attempt, body)

    def _ended(self, attempt: _Attempt, result: Fetched | BaseException) -> None:
        with self.lock:
            if attempt in self.running:
                self.running.remove(attempt)
            if attempt.hedge is not None:
                attempt.hedge.cancel()
                attempt.hedge = None
            if self.decided.is_set():  # a loser: counted `cancelled` (or as it ended)
                return
            if isinstance(result, _FAILOVER):
                self._failed(attempt, result)
                if not self.running:
                    self._decide(self._error())
            else:
                self._decide(result)

    def _failed(self, attempt: _Attempt, exc: Exception) -> None:
        self.errors.append(exc)
        if isinstance(exc, MetadataHttpError) and not gateway_at_fault(exc):
            self.not_found.append(gateway_host(attempt.target))
        if self.tried < len(self.order) and len(self.running) < MAX_IN_FLIGHT:
            self._launch()

    def _decide(self, outcome: Fetched | BaseException) -> None:
        """The race's outcome; every request still running is cancelled (at once), but one
        that measures a gateway not measured yet."""
        self.outcome = outcome
        for attempt in self.running:
            if attempt.hedge is not None:
                attempt.hedge.cancel()
            if attempt.cancelled is not None and not attempt.let_finish:
                attempt.cancelled.set()
        self.running.clear()
        self.decided.set()

    def _error(self) -> Exception:
        """What every gateway failing means for the token: come back later if any gateway
        only put us off, retry at once if any timed out, else the healthiest one's error."""
        for kind in (RetryableJobError, MetadataTimeoutError):
            found = next((e for e in self.errors if isinstance(e, kind)), None)
            if found is not None:
                return found
        return self.errors[0]


def _lost_after(attempt: _Attempt) -> float | None:
    """The latency sample a cancelled request gives: its wait so far, a lower bound, when it
    was cancelled for being slower than its gateway's p90 (a first request outrun by its
    hedge). A hedge cut short because the first answered tells nothing of its own gateway:
    its few milliseconds would make that gateway look faster than any."""
    waited = time.monotonic() - attempt.started
    if attempt.hedge_after_s is None or waited < attempt.hedge_after_s:
        return None
    return waited


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
