from __future__ import annotations

import threading

import pytest

from shared.config import Settings
from shared.deadline import check_deadline, job_deadline
from shared.errors import JobTimeoutError
from shared.jobs.outcomes import outcome_for_error
from shared.models import JobStatus


def test_a_deadline_holds_only_in_the_thread_that_runs_the_job() -> None:
    """Fetch-pool threads run many jobs: one job's deadline must not stop another's calls."""
    seen: list[BaseException | None] = []

    def elsewhere() -> None:
        try:
            check_deadline("another job's fetch")
            seen.append(None)
        except JobTimeoutError as exc:
            seen.append(exc)

    with job_deadline(-1):
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(10)
        with pytest.raises(JobTimeoutError):
            check_deadline("this job's fetch")
    assert seen == [None]


def test_a_job_past_its_deadline_stops_at_the_next_check() -> None:
    with job_deadline(-1), pytest.raises(JobTimeoutError, match="before calling get-owner"):
        check_deadline("calling get-owner")
    check_deadline("after the job")  # the deadline ends with the job


def test_a_timed_out_job_ends_failed() -> None:
    outcome = outcome_for_error(JobTimeoutError("late"), 0, Settings())
    assert outcome.status == JobStatus.FAILED
