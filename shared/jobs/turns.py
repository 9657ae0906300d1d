"""Token jobs handed to the broker in turns across contracts, a bounded number ahead each.

Workers take messages first in, first out. If a contract's thousands of token jobs were all
sent the moment it was enumerated, a contract enumerated a moment later would wait behind
them, and with it every metadata host but the first one's. So a contract job leaves its
tokens' jobs pending and asks for a dispatch; every dispatch queues due token jobs turn by
turn (one of each contract, then the next of each...), topping each contract up to
`TOKEN_JOBS_AHEAD_PER_CONTRACT` jobs waiting on the broker. Workers ask again as they finish
batches (at most once per `REFILL_EVERY_S` across all workers, less often when a refill
itself takes long); beat's dispatcher does it every two seconds whatever happens.

A contract job's own refill hands out only `FIRST_HELPING` of each contract: contracts are
often enumerated a few milliseconds apart (a cold start, a block deploying several), and the
first one's thousand jobs would otherwise fill the queue ahead of the others' for seconds.
The first finished batch tops every contract up, in turns.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack

import redis

from shared.db import session_scope
from shared.jobs.recovery import sending
from shared.jobs.runner import OUTAGE_ERRORS, JobContext
from shared.jobs.transitions import (
    TOKEN_JOBS_AHEAD_PER_CONTRACT,
    due_token_jobs_in_turns,
    mark_queued,
)

log = logging.getLogger(__name__)

REFILL_KEY = "token-metadata:token-refill"
# A refill reads every due token job: a few milliseconds for ten thousand. Twice a second is
# enough for 1,000 jobs ahead per contract to keep any worker fed (2,000 tokens/s a contract).
REFILL_EVERY_S = 0.5
# A refill's query costs time with the number of due jobs: refills are spaced at least this
# many times the last one's duration, so that they take a bounded share of the database.
REFILL_SPACING = 4.0
# Token jobs of each contract a contract job hands out at once: two batches.
FIRST_HELPING = 100
# The most token jobs one dispatch queues (beat's dispatcher uses the same).
DISPATCH_LIMIT = 5000


class TokenTurns:
    """Queues due token jobs in turns; one per worker process (and one in beat)."""

    def __init__(
        self,
        ctx: JobContext,
        client: redis.Redis,
        ahead: int = TOKEN_JOBS_AHEAD_PER_CONTRACT,
        every_s: float = REFILL_EVERY_S,
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.ahead = ahead
        self.every_s = every_s
        self._last_query_s = 0.0

    def refill(self) -> int:
        """Queue due token jobs in turns and send them, unless a worker did a moment ago.
        Returns how many; an outage is logged, not raised (beat's dispatcher catches up)."""
        try:
            return self._queue_and_send(self.ahead) if self._turn_is_ours() else 0
        except OUTAGE_ERRORS as exc:
            return _outage(exc)

    def first_helping(self) -> int:
        """Right after a contract's tokens are created: a little of each contract, now."""
        try:
            return self._queue_and_send(min(FIRST_HELPING, self.ahead))
        except OUTAGE_ERRORS as exc:
            return _outage(exc)

    def _turn_is_ours(self) -> bool:
        spacing_s = max(self.every_s, REFILL_SPACING * self._last_query_s)
        return bool(self.client.set(REFILL_KEY, "1", nx=True, px=max(1, int(spacing_s * 1000))))

    def _queue_and_send(self, ahead: int) -> int:
        with ExitStack() as in_flight:
            with session_scope(self.ctx.sessions) as session:
                started = time.monotonic()
                ids = due_token_jobs_in_turns(session, ahead, DISPATCH_LIMIT)
                self._last_query_s = time.monotonic() - started
                messages = mark_queued(session, ids)
                # Recorded before the commit, removed after the send (see recovery.sending).
                in_flight.enter_context(sending(self.client, [m.job_id for m in messages]))
            self.ctx.enqueue(messages)
        return len(messages)


def _outage(exc: Exception) -> int:
    log.warning("could not dispatch token jobs (%s); beat's dispatcher will", exc)
    return 0
