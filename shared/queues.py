"""Task names and queues: the contract between whoever enqueues work and the workers.

The API and the services enqueue by task name, so neither needs to import `workers`.
Queues are consumed in the order of `WORKER_QUEUES` (the Redis transport's `priority`
queue-order strategy), so a new contract is never stuck behind thousands of token jobs, and
refreshes of tokens that already answer (SIP-019 notifications, dynamic tokens, re-mints) wait
behind tokens that have never been fetched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PROCESS_CONTRACT_TASK = "token_metadata.process_contract"
PROCESS_TOKEN_TASK = "token_metadata.process_token"  # noqa: S105 - a task name
# Several token jobs in one message: claimed, fetched concurrently and stored together.
PROCESS_TOKENS_TASK = "token_metadata.process_tokens"
MONITOR_CHAIN_TASK = "token_metadata.monitor_chain"
DISPATCH_JOBS_TASK = "token_metadata.dispatch_jobs"
CACHE_IMAGES_TASK = "token_metadata.cache_images"
PRUNE_CHANGES_TASK = "token_metadata.prune_changes"
# Webhooks (docs/webhooks.md): beat's dispatcher enqueues one delivery per due subscription.
DISPATCH_WEBHOOKS_TASK = "token_metadata.dispatch_webhooks"
DELIVER_WEBHOOKS_TASK = "token_metadata.deliver_webhooks"

CONTRACTS_QUEUE = "contracts"
TOKENS_QUEUE = "tokens"
CHAIN_QUEUE = "chain"
REFRESH_QUEUE = "refresh"
# Image downloads and resizing: last, so a slow image never delays metadata.
IMAGES_QUEUE = "images"
# Webhook deliveries: after every metadata queue (their state is in Postgres, not here).
WEBHOOKS_QUEUE = "webhooks"

# Highest priority first.
WORKER_QUEUES: tuple[str, ...] = (
    CHAIN_QUEUE,
    CONTRACTS_QUEUE,
    TOKENS_QUEUE,
    REFRESH_QUEUE,
    IMAGES_QUEUE,
    WEBHOOKS_QUEUE,
)


@dataclass(frozen=True)
class JobMessage:
    """What goes on the broker for one job: ids only, the job row holds everything else."""

    job_id: int
    is_contract: bool
    # A token processed before: it already answers, so its new fetch can wait.
    is_refresh: bool = False

    @property
    def task_name(self) -> str:
        return PROCESS_CONTRACT_TASK if self.is_contract else PROCESS_TOKEN_TASK

    @property
    def queue(self) -> str:
        if self.is_contract:
            return CONTRACTS_QUEUE
        return REFRESH_QUEUE if self.is_refresh else TOKENS_QUEUE


# The port through which services hand job messages to the broker (after their commit).
Enqueue = Callable[[Sequence[JobMessage]], None]

# Token jobs per message. Small enough that a batch finishes in about one metadata round trip
# and work spreads over every worker; large enough that the broker and Postgres see one
# message, one claim and one commit for many tokens (50 rather than 20: about 10 % less
# worker CPU per token in bench/run.py once the fetches became cheap).
TOKEN_BATCH_SIZE = 50


@dataclass(frozen=True)
class TaskCall:
    """One broker message: a task name, its queue and the job ids it carries."""

    task_name: str
    queue: str
    job_ids: list[int] = field(default_factory=list)

    @property
    def args(self) -> list[object]:
        if self.task_name == PROCESS_TOKENS_TASK:
            return [self.job_ids]
        return [self.job_ids[0]]


def task_calls(
    messages: Sequence[JobMessage], batch_size: int = TOKEN_BATCH_SIZE
) -> list[TaskCall]:
    """Contract jobs one per message; token jobs in batches per queue, keeping their order."""
    calls: list[TaskCall] = []
    open_batches: dict[str, TaskCall] = {}
    for message in messages:
        if message.is_contract:
            calls.append(TaskCall(PROCESS_CONTRACT_TASK, message.queue, [message.job_id]))
            continue
        batch = open_batches.get(message.queue)
        if batch is None or len(batch.job_ids) >= batch_size:
            batch = TaskCall(PROCESS_TOKENS_TASK, message.queue)
            open_batches[message.queue] = batch
            calls.append(batch)
        batch.job_ids.append(message.job_id)
    return calls
