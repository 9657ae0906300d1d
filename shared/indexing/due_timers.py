"""Calls made at a due time by one thread for a whole process part: a heap of due times.

The gateway fetcher needs a timer per document (its hedge, due after the first gateway's
p90 latency) while the calling thread is blocked in the first request. A `threading.Timer`
each would start a thread per document; here one thread sleeps until the earliest due time.
Most timers are cancelled before they are due (the first gateway answered): a cancelled one
costs nothing but its heap entry, dropped when the thread next wakes. The thread runs timers
at most once per GRANULARITY_S, every one then due, so a timer may run up to that much late:
thousands of documents a second do not wake it thousands of times.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

GRANULARITY_S = 0.01
log = logging.getLogger(__name__)


class DueTimer:
    """One scheduled call; `cancel()` makes it a no-op and drops what it refers to."""

    __slots__ = ("call",)

    def __init__(self, call: Callable[[], None]) -> None:
        self.call: Callable[[], None] | None = call

    def cancel(self) -> None:
        self.call = None


class DueTimers:
    """Runs each scheduled call at its due time (time.monotonic) on one daemon thread,
    started with the first timer. A call must be quick: later ones wait for it."""

    def __init__(self, name: str, granularity_s: float = GRANULARITY_S) -> None:
        self.name = name
        self.granularity_s = granularity_s
        self._heap: list[tuple[float, int, DueTimer]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._woke_at = -GRANULARITY_S  # when the thread last ran timers

    def call_at(self, due: float, call: Callable[[], None]) -> DueTimer:
        timer = DueTimer(call)
        with self._changed:
            if self._closed:
                raise RuntimeError(f"{self.name} timers are closed")
            heapq.heappush(self._heap, (due, next(self._order), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is timer:  # earlier than what the thread sleeps for
                self._changed.notify()
        return timer

    def close(self) -> None:
        """Stop the thread; timers not yet due never run."""
        with self._changed:
            self._closed = True
            self._heap.clear()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            due = self._next_due()
            if due is None:
                return
            for timer in due:
                call = timer.call
                if call is None:
                    continue
                try:
                    call()
                except Exception:
                    log.exception("a %s timer failed", self.name)

    def _next_due(self) -> list[DueTimer] | None:
        """Waits for the next timers due (None once closed), and takes them off the heap."""
        with self._changed:
            while not self._closed:
                while self._heap and self._heap[0][2].call is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._changed.wait()
                    continue
                now = time.monotonic()
                wake_at = max(self._heap[0][0], self._woke_at + self.granularity_s)
                if wake_at > now:
                    self._changed.wait(wake_at - now)
                    continue
                self._woke_at = now
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                return due
        return None
