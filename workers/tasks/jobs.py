"""Contract and token jobs. Messages carry a job id only; the job row holds the rest."""

from __future__ import annotations

from celery import current_app, shared_task

from shared.queues import PROCESS_CONTRACT_TASK, PROCESS_TOKEN_TASK
from workers.runtime import get_runtime


@shared_task(name=PROCESS_CONTRACT_TASK, acks_late=True, ignore_result=True)
def process_contract(job_id: int) -> str | None:
    outcome = get_runtime(current_app).processor.process_contract(int(job_id))
    return None if outcome is None else outcome.status.value


@shared_task(name=PROCESS_TOKEN_TASK, acks_late=True, ignore_result=True)
def process_token(job_id: int) -> str | None:
    outcome = get_runtime(current_app).processor.process_token(int(job_id))
    return None if outcome is None else outcome.status.value
