"""Worker metrics: how tasks and their jobs are labelled and counted (no services needed)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from shared.config import Settings
from shared.queues import PROCESS_TOKENS_TASK
from workers import metrics


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("state", "label"),
    [
        ("SUCCESS", "done"),
        ("RETRY", "deferred"),  # Postgres away before the claim: the message comes back
        ("FAILURE", "failed"),
        ("IGNORED", "skipped"),
        (None, "failed"),
    ],
)
def test_task_outcome_is_what_celery_says_of_the_task(state: str | None, label: str) -> None:
    assert metrics.task_outcome(state) == label


@pytest.mark.parametrize(
    ("retval", "outcomes"),
    [
        (None, {"skipped": 1}),  # another delivery had the job
        ("done", {"done": 1}),
        ("pending", {"retry": 1}),  # back to pending: retried later
        ("invalid", {"invalid": 1}),
        ({"done": 18, "pending": 1, "invalid": 1}, {"done": 18, "retry": 1, "invalid": 1}),
        ({}, {}),
    ],
)
def test_job_outcomes_come_from_the_task_return_value(
    retval: object, outcomes: dict[str, int]
) -> None:
    assert metrics.job_outcomes(retval) == outcomes


def test_a_finished_batch_task_counts_itself_its_jobs_and_its_duration() -> None:
    task = SimpleNamespace(name=PROCESS_TOKENS_TASK)
    before = {
        "task": sample("token_metadata_tasks_total", task=task.name, outcome="done"),
        "done": sample("token_metadata_jobs_total", task=task.name, outcome="done"),
        "retry": sample("token_metadata_jobs_total", task=task.name, outcome="retry"),
        "timed": sample("token_metadata_task_duration_seconds_count", task=task.name),
    }
    task_id = uuid.uuid4().hex
    metrics.task_started(task_id=task_id, task=task)
    metrics.task_finished(
        task_id=task_id, task=task, state="SUCCESS", retval={"done": 3, "pending": 1}
    )
    assert (
        sample("token_metadata_tasks_total", task=task.name, outcome="done") == before["task"] + 1
    )
    assert sample("token_metadata_jobs_total", task=task.name, outcome="done") == before["done"] + 3
    assert (
        sample("token_metadata_jobs_total", task=task.name, outcome="retry") == before["retry"] + 1
    )
    timed = sample("token_metadata_task_duration_seconds_count", task=task.name)
    assert timed == before["timed"] + 1
    assert task_id not in metrics._started


def test_a_beat_task_counts_no_jobs() -> None:
    task = SimpleNamespace(name=f"tests.beat_{uuid.uuid4().hex[:6]}")
    metrics.task_started(task_id="b1", task=task)
    metrics.task_finished(task_id="b1", task=task, state="SUCCESS", retval=12)
    assert sample("token_metadata_tasks_total", task=task.name, outcome="done") == 1
    assert sample("token_metadata_jobs_total", task=task.name, outcome="done") == 0


def test_a_task_that_raised_is_failed_and_counts_no_jobs() -> None:
    task = SimpleNamespace(name=PROCESS_TOKENS_TASK)
    before = sample("token_metadata_tasks_total", task=task.name, outcome="failed")
    jobs_before = sample("token_metadata_jobs_total", task=task.name, outcome="skipped")
    metrics.task_finished(task_id="f1", task=task, state="FAILURE", retval=ValueError("x"))
    assert sample("token_metadata_tasks_total", task=task.name, outcome="failed") == before + 1
    assert sample("token_metadata_jobs_total", task=task.name, outcome="skipped") == jobs_before


def test_exporter_is_off_when_the_port_is_zero() -> None:
    assert metrics.start_exporter(Settings(worker_metrics_port=0)) is None
