"""The job time limit (JOB_QUEUE_TIMEOUT_MS), checked between network calls.

Worker threads cannot be interrupted, so a job checks its deadline before each node call
and each metadata fetch (every one of which has its own timeout); past the deadline the job
ends `failed`, as in Hiro's API (docs/job-engine.md#time-limit).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from shared.errors import JobTimeoutError

_deadline: ContextVar[float | None] = ContextVar("job_deadline", default=None)


@contextmanager
def job_deadline(seconds: float) -> Iterator[None]:
    with job_deadline_at(time.monotonic() + seconds):
        yield


@contextmanager
def job_deadline_at(deadline: float) -> Iterator[None]:
    """The running job must be done by `deadline` (a `time.monotonic()` value)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def check_deadline(doing: str) -> None:
    """Raise JobTimeoutError if the running job is out of time."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise JobTimeoutError(f"job time limit reached before {doing}")
