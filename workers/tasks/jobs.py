"""Contract and token jobs. Messages carry a job id only; the job row holds the rest."""

from __future__ import annotations

from typing import Any

from celery import current_app, shared_task
from sqlalchemy.exc import OperationalError

from shared.jobs.runner import DATABASE_RETRY_S
from shared.queues import PROCESS_CONTRACT_TASK, PROCESS_TOKEN_TASK, PROCESS_TOKENS_TASK
from workers.runtime import get_runtime

# Postgres unreachable before the job could be claimed: deliver the message again shortly
# (a claimed job is recovered through its lease instead).
JOB_TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "ignore_result": True,
    "bind": True,
    "autoretry_for": (OperationalError,),
    "retry_kwargs": {"countdown": DATABASE_RETRY_S, "max_retries": None},
}


@shared_task(name=PROCESS_CONTRACT_TASK, **JOB_TASK_OPTIONS)
def process_contract(self: Any, job_id: int) -> str | None:
    outcome = get_runtime(current_app).processor.process_contract(int(job_id))
    return None if outcome is None else outcome.status.value


@shared_task(name=PROCESS_TOKEN_TASK, **JOB_TASK_OPTIONS)
def process_token(self: Any, job_id: int) -> str | None:
    outcome = get_runtime(current_app).processor.process_token(int(job_id))
    return None if outcome is None else outcome.status.value


@shared_task(name=PROCESS_TOKENS_TASK, **JOB_TASK_OPTIONS)
def process_tokens(self: Any, job_ids: list[int]) -> dict[str, int]:
    """A batch of token jobs; returns how many ended in each status."""
    outcomes = get_runtime(current_app).processor.process_tokens([int(i) for i in job_ids])
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
    return counts
