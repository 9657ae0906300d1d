"""The one timer thread that starts hedges (shared/indexing/due_timers.py)."""

from __future__ import annotations

import threading
import time

from shared.indexing.due_timers import DueTimers


def wait_for(event: threading.Event, what: str) -> None:
    assert event.wait(2.0), what


def test_calls_run_in_due_order_on_one_thread_not_before_they_are_due() -> None:
    timers = DueTimers("test-timers")
    ran: list[tuple[str, float, int]] = []
    done = threading.Event()
    now = time.monotonic()
    try:

        def note(name: str) -> None:
            ran.append((name, time.monotonic(), threading.get_ident()))
            if len(ran) == 3:
                done.set()

        timers.call_at(now + 0.06, lambda: note("late"))
        timers.call_at(now + 0.02, lambda: note("early"))
        timers.call_at(now - 1.0, lambda: note("overdue"))
        wait_for(done, "every timer ran")
    finally:
        timers.close()

    assert [name for name, _, _ in ran] == ["overdue", "early", "late"]
    assert ran[1][1] >= now + 0.02
    assert ran[2][1] >= now + 0.06
    assert len({thread for _, _, thread in ran}) == 1
    assert ran[0][2] != threading.get_ident()


def test_a_cancelled_timer_never_runs_and_a_failing_one_stops_nothing() -> None:
    timers = DueTimers("test-timers")
    ran: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    try:
        cancelled = timers.call_at(now + 0.02, lambda: ran.append("cancelled"))

        def fail() -> None:
            raise RuntimeError("a failing timer")

        timers.call_at(now + 0.03, fail)
        timers.call_at(now + 0.05, done.set)
        cancelled.cancel()
        wait_for(done, "the timer after the failing one ran")
    finally:
        timers.close()

    assert ran == []
