"""Self-service refreshes: a holder asks for one token to be fetched again
(docs/marketplace-api.md#refresh).

The cooldown is a column, `tokens.refresh_requested_at`, taken with one conditional UPDATE,
so every API process applies it and of two requests at once exactly one gets through. The
caller owns the session and commits; the messages returned are sent after the commit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from shared.jobs.transitions import mark_queued, repend_token_jobs
from shared.models import JobTrigger, Token, token_type_sql
from shared.queues import JobMessage
from shared.reads.tokens import ContractNotFound, TokenNotFound

__all__ = ["ContractNotFound", "RefreshTooSoon", "TokenFrozen", "TokenNotFound"]


class TokenFrozen(Exception):
    """The token's latest SIP-019 notification froze it: its metadata never changes."""


class RefreshTooSoon(Exception):
    """The token was fetched, or a refresh was asked for, within the cooldown."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"refresh possible in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Target:
    token_type: str | None
    token_id: int | None
    job_id: int | None
    frozen: bool


# The contract, the token of that number, its job, and whether its latest notification (in
# the order `shared.chain.notifications` reads them) froze it.
_TARGET = text(
    f"""
    SELECT {token_type_sql("c.sip")} AS token_type,
           t.id AS token_id,
           (SELECT j.id FROM jobs j
             WHERE j.token_id = t.id AND j.smart_contract_id IS NULL LIMIT 1) AS job_id,
           COALESCE((SELECT n.update_mode = 'frozen' FROM update_notifications n
                      WHERE n.token_id = t.id
                      ORDER BY n.block_height DESC, n.tx_index DESC, n.event_index DESC
                      LIMIT 1), false) AS frozen
    FROM smart_contracts c
    LEFT JOIN tokens t
        ON t.smart_contract_id = c.id AND t.token_number = CAST(:token_number AS numeric)
    WHERE c.principal = :principal
    """  # noqa: S608 - composed of constant SQL, values are bound
)


def request_refresh(
    session: Session, token_type: str, principal: str, token_number: int, cooldown: timedelta
) -> list[JobMessage]:
    """Pend the token's job again and queue it, unless refused: ContractNotFound (no such
    contract, or one of another token type), TokenNotFound, TokenFrozen, RefreshTooSoon.

    As an admin refresh: a job pending, or queued and not yet running, is left alone (it
    fetches anyway) and nothing is sent, though the cooldown is taken; one running now is
    fetched again after it. Messages go to the refresh queue even for a token never fetched,
    so that a request never jumps ahead of first fetches.
    """
    row = session.execute(
        _TARGET, {"principal": principal, "token_number": token_number}
    ).one_or_none()
    target = None if row is None else _Target(**row._mapping)
    if target is None or target.token_type != token_type:
        raise ContractNotFound
    if target.token_id is None or target.job_id is None:
        raise TokenNotFound
    if target.frozen:
        raise TokenFrozen
    if not _take_cooldown(session, target.token_id, cooldown):
        raise RefreshTooSoon(_seconds_left(session, target.token_id, cooldown))
    due = repend_token_jobs(session, [target.token_id], trigger=JobTrigger.SELF_SERVICE)
    return [replace(message, is_refresh=True) for message in mark_queued(session, due)]


def _take_cooldown(session: Session, token_id: int, cooldown: timedelta) -> bool:
    """Record the request unless the token was fetched or asked for within `cooldown`. A
    concurrent request waits for this row's lock, then finds the new time and takes nothing."""
    since = func.now() - cooldown
    taken = session.execute(
        update(Token)
        .where(
            Token.id == token_id,
            or_(Token.refresh_requested_at.is_(None), Token.refresh_requested_at <= since),
            or_(Token.updated_at.is_(None), Token.updated_at <= since),
        )
        .values(refresh_requested_at=func.now())
        .returning(Token.id)
        .execution_options(synchronize_session=False)
    ).first()
    return taken is not None


def _seconds_left(session: Session, token_id: int, cooldown: timedelta) -> int:
    """Whole seconds until the cooldown ends, at least 1 (a Retry-After)."""
    ends = func.greatest(Token.refresh_requested_at, Token.updated_at) + cooldown
    left = session.scalar(
        select(func.extract("epoch", ends - func.now())).where(Token.id == token_id)
    )
    return max(1, math.ceil(float(left or 0)))
