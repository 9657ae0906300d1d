from __future__ import annotations

import pytest

from shared.config import Settings
from shared.deadline import check_deadline, job_deadline
from shared.errors import JobTimeoutError
from shared.models import JobStatus
from shared.services.jobs import ClaimedJob
from shared.services.runner import outcome_for_error


def test_no_deadline_outside_a_job() -> None:
    check_deadline("anything")


def test_a_job_past_its_deadline_stops_at_the_next_check() -> None:
    with job_deadline(-1), pytest.raises(JobTimeoutError, match="before calling get-owner"):
        check_deadline("calling get-owner")
    check_deadline("after the job")  # the deadline ends with the job


def test_a_timed_out_job_ends_failed() -> None:
    job = ClaimedJob(id=1, token_id=1, smart_contract_id=None, retry_count=0)
    outcome = outcome_for_error(JobTimeoutError("late"), job, Settings())
    assert outcome.status == JobStatus.FAILED
