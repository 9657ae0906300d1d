"""Each token's recent fetch attempts (docs/fetch-history.md): what a fetch records while it
runs, how an error reads as an outcome, and the one statement that writes a batch's attempts
and prunes each token to its newest FETCH_ATTEMPTS_KEPT.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.errors import (
    MetadataHttpError,
    TooManyRequestsError,
    UserError,
)
from shared.images.errors import (
    ImageError,
    ImageHttpError,
)
from shared.metadata.outcomes import classify_fetch
from shared.models import FetchOutcome
from shared.sql_params import json_rows

FETCH_ATTEMPTS_KEPT = 20
METADATA, IMAGE = "metadata", "image"


@dataclass(frozen=True)
class FetchAttempt:
    at: datetime
    kind: str  # METADATA or IMAGE
    url: str | None
    http_status: int | None
    bytes: int | None
    duration_ms: int | None
    outcome: FetchOutcome
    reason_code: int | None = None


def scrub_url(url: str | None) -> str | None:
    """The URL as it may be shown: no user name or password, no fragment."""
    if url is None:
        return None
    if "@" not in url and "#" not in url:
        return url  # nothing to remove: most URLs, and no parse
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return None  # not a URL anyone could have fetched
    if "@" not in parts.netloc and not parts.fragment:
        return url
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit((parts.scheme, host + port, parts.path, parts.query, ""))


def classify(exc: BaseException) -> tuple[FetchOutcome, int | None, int | None] | None:
    """(outcome, HTTP status, reason code) of a fetch that raised `exc`; None when the error
    is not a fetch's (a bug, an outage)."""
    outcome = classify_fetch(exc)
    if outcome == FetchOutcome.ERROR:
        return None
    status: int | None = None
    if isinstance(exc, MetadataHttpError):
        status = exc.status
    elif isinstance(exc, TooManyRequestsError) or isinstance(exc.__cause__, TooManyRequestsError):
        status = 429  # also a 429 the adaptive limits turned into a deferral
    elif isinstance(exc, ImageHttpError) and isinstance(exc.__cause__, MetadataHttpError):
        status = exc.__cause__.status
    reason: int | None = None
    if isinstance(exc, UserError | ImageError):
        reason = int(exc.reason)
    return outcome, status, reason


@dataclass
class Answer:
    """What a fetch learnt before it could fail (a parse error follows a 200)."""

    http_status: int | None = None
    bytes: int | None = None


@dataclass
class FetchRecorder:
    """The attempts of one job run, in the order they started; shared by the threads that
    run the job's parts one after the other."""

    attempts: list[FetchAttempt] = field(default_factory=list)
    last_error: BaseException | None = None  # the error of the last attempt recorded

    @contextmanager
    def attempt(self, kind: str, url: str) -> Iterator[Answer]:
        """Record one fetch of `url`: the caller notes the answer's status and size."""
        at, started, answer = datetime.now(UTC), time.monotonic(), Answer()
        try:
            yield answer
        except Exception as exc:
            how = classify(exc)
            if how is not None:
                outcome, status, reason = how
                self._add(at, started, kind, url, answer, outcome, status, reason)
                self.last_error = exc
            raise
        self._add(at, started, kind, url, answer, FetchOutcome.OK, None, None)

    def deferred(self, exc: BaseException) -> None:
        """A fetch that never started: its host was busy or rate limited."""
        how = classify(exc)
        if how is not None and how[0] in (FetchOutcome.DEFERRED, FetchOutcome.RATE_LIMITED):
            self.attempts.append(
                FetchAttempt(datetime.now(UTC), METADATA, None, None, None, None, how[0], how[2])
            )

    def _add(
        self,
        at: datetime,
        started: float,
        kind: str,
        url: str,
        answer: Answer,
        outcome: FetchOutcome,
        status: int | None,
        reason: int | None,
    ) -> None:
        duration_ms = round((time.monotonic() - started) * 1000)
        self.attempts.append(
            FetchAttempt(
                at,
                kind,
                scrub_url(url),
                answer.http_status or status,
                answer.bytes,
                duration_ms,
                outcome,
                reason,
            )
        )


def attempt_rows(
    token_id: int,
    trigger: str | None,
    attempts: Iterable[FetchAttempt],
    *,
    unchanged: bool = False,
) -> Iterator[dict[str, Any]]:
    """A token's attempts as rows to write; with `unchanged`, a successful fetch of a
    document equal to the one stored reads `unchanged`. Without a trigger, the attempt takes
    its token job's."""
    for a in attempts:
        outcome = a.outcome
        if unchanged and outcome == FetchOutcome.OK and a.kind == METADATA:
            outcome = FetchOutcome.UNCHANGED
        yield {
            "token_id": token_id,
            "at": a.at.isoformat(),
            "kind": a.kind,
            "trigger": trigger,
            "url": a.url,
            "http_status": a.http_status,
            "bytes": a.bytes,
            "duration_ms": a.duration_ms,
            "outcome": outcome.value,
            "reason_code": a.reason_code,
        }


def write_attempts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the attempts and prune their tokens to the newest FETCH_ATTEMPTS_KEPT, in one
    statement: a token's older attempts go as its new ones come, so each delete is bounded
    by the number of rows added."""
    if rows:
        session.execute(_WRITE, {"rows": json_rows(rows), "kept": FETCH_ATTEMPTS_KEPT})


# A data-modifying CTE does not show its rows to the rest of the statement, so the DELETE
# keeps `kept` less the token's new rows of the attempts that were there before. Every step
# is an index lookup per token (LATERAL ... LIMIT 1 is never turned into a join): neither
# `tokens` nor `fetch_attempts` is ever scanned whole.
_WRITE = text(
    """
    WITH u AS (
        SELECT e.*, row_number() OVER (PARTITION BY e.token_id ORDER BY e.n DESC) AS newest
          FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb))
                          AS (token_id integer, at timestamptz, kind text, trigger text,
                              url text, http_status integer, bytes integer,
                              duration_ms integer, outcome text, reason_code integer))
               WITH ORDINALITY AS e(token_id, at, kind, trigger, url, http_status, bytes,
                                    duration_ms, outcome, reason_code, n)
    ), inserted AS (
        INSERT INTO fetch_attempts (token_id, at, kind, trigger, url, http_status, bytes,
                                    duration_ms, outcome, reason_code)
        SELECT u.token_id, u.at, u.kind,
               COALESCE(u.trigger, (SELECT j.trigger FROM jobs j WHERE j.token_id = u.token_id
                                     AND j.smart_contract_id IS NULL)),
               u.url, u.http_status, u.bytes, u.duration_ms, u.outcome, u.reason_code
          FROM u  -- a token deleted meanwhile (a re-org) gets no rows
         CROSS JOIN LATERAL (SELECT 1 FROM tokens t WHERE t.id = u.token_id LIMIT 1) t
         WHERE u.newest <= :kept ORDER BY u.n
    ), added AS (
        SELECT token_id, LEAST(count(*), :kept) AS n FROM u GROUP BY token_id
    )
    DELETE FROM fetch_attempts
     WHERE id = ANY(ARRAY(
         SELECT old.id FROM added a
          CROSS JOIN LATERAL (SELECT g.id FROM fetch_attempts g WHERE g.token_id = a.token_id
                               ORDER BY g.id DESC OFFSET :kept - a.n) old))
    """
)
