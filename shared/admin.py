"""Admin actions: refresh a contract's tokens, retry what failed, import a contract now
(docs/reference-differences.md#admin-routes).

Each takes the caller's session and never commits; the messages returned are sent after
the commit, so a worker never looks for a job state that is not visible yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Numeric, select
from sqlalchemy.orm import Session

from shared.chain.contract_import import import_contract
from shared.jobs.table import TOKEN_JOBS
from shared.jobs.transitions import job_cause, mark_queued, repend_token_jobs
from shared.models import JobStatus, JobTrigger, SmartContract, Token
from shared.queues import JobMessage
from shared.sql_params import any_of
from shared.stacks.api_db import StacksApiDatabase


class ContractNotFound(Exception):
    """No token contract with this principal is stored."""


def contract_id_of(session: Session, principal: str) -> int:
    contract_id = session.scalar(
        select(SmartContract.id).where(SmartContract.principal == principal)
    )
    if contract_id is None:
        raise ContractNotFound(principal)
    return contract_id


def refresh_tokens(
    session: Session, principal: str, token_numbers: Sequence[int] | None = None
) -> list[JobMessage]:
    """Pend the jobs of a contract's tokens (all, or these numbers) and queue them at once.

    As in Hiro's API: frozen tokens too, no notification written. A job already pending or
    waiting for a worker is left alone; one running now is fetched again after it.
    """
    tokens = select(Token.id).where(Token.smart_contract_id == contract_id_of(session, principal))
    if token_numbers is not None:
        tokens = tokens.where(Token.token_number == any_of("numbers", token_numbers, Numeric))
    token_ids = session.scalars(tokens.order_by(Token.token_number)).all()
    due = repend_token_jobs(session, token_ids, trigger=JobTrigger.ADMIN)
    return mark_queued(session, due)


def retry_failed_jobs(session: Session) -> int:
    """Every failed or invalid job, contract or token, back to pending with a fresh retry
    budget; beat's dispatcher hands them out in its usual order. Returns how many."""
    ended = [JobStatus.FAILED, JobStatus.INVALID]
    return TOKEN_JOBS.restart_ended(session, ended, job_cause(JobTrigger.ADMIN))


def import_contract_now(
    session: Session, chain: StacksApiDatabase, principal: str
) -> list[JobMessage]:
    """Import (or re-enumerate) one contract from the Stacks API database and queue its job.
    Raises ContractImportError with Hiro's API's message."""
    return mark_queued(session, import_contract(session, chain, principal))
