"""`token_metadata_fetch_outcomes_total{kind,host_class,outcome}`: every fetch of a metadata
document or an image, counted once where its result is known (docs/freshness.md#fetch-outcomes).

A failed fetch is counted when it fails. A metadata document fetched fine is counted when its
token is stored: `ok`, or `unchanged` when the token's documents are the same as before, which
only the store knows; it is counted once that transaction commits (a batch rolled back and
stored again token by token counts each document once). A document fetched fine for a token
that is not stored (a later document failed) is counted `ok` at once.

In the process's default registry: workers export it (workers/metrics.py); the API never
imports this module. Each worker counts its own fetches, so a fleet's total is their `sum()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from shared.metadata.outcomes import FetchOutcome, HostClass, classify_fetch

FetchKind = Literal["metadata", "image"]

FETCH_OUTCOMES = Counter(
    "token_metadata_fetch_outcomes",
    "Metadata documents and images fetched, by kind (metadata, image), host class "
    "(ipfs_gateway, arweave_gateway, http, data_uri) and outcome (ok, unchanged, timeout, ...)",
    ["kind", "host_class", "outcome"],
)
_STAGED = "token_metadata_fetches_staged"


def count_fetch(kind: FetchKind, host: HostClass, error: BaseException | None = None) -> None:
    """Count one fetch that raised `error` (None: it succeeded)."""
    FETCH_OUTCOMES.labels(kind, host, classify_fetch(error)).inc()


@contextmanager
def failures_counted(kind: FetchKind, host: HostClass) -> Iterator[None]:
    """Count the fetch (and parse) run inside if it raises; the exception goes on."""
    try:
        yield
    except Exception as exc:
        count_fetch(kind, host, exc)
        raise


@contextmanager
def counted_fetch(kind: FetchKind, host: HostClass) -> Iterator[None]:
    """Count the fetch (and parse) run inside by how it ended; an exception goes on."""
    with failures_counted(kind, host):
        yield
    count_fetch(kind, host)


def count_stored_documents(
    session: Session, stored: Iterable[tuple[Iterable[HostClass], bool]]
) -> None:
    """Count the metadata documents of stored tokens (their hosts, and whether the token's
    documents changed) when the session's transaction commits; a rollback forgets them."""
    staged: list[tuple[HostClass, FetchOutcome]] = [
        (host, classify_fetch(unchanged=not changed)) for hosts, changed in stored for host in hosts
    ]
    if not staged:
        return
    session.info.setdefault(_STAGED, []).extend(staged)
    if not event.contains(session, "after_commit", _count_staged):
        event.listen(session, "after_commit", _count_staged)
        event.listen(session, "after_transaction_end", _forget_staged)


def _count_staged(session: Session) -> None:
    for host, outcome in session.info.pop(_STAGED, None) or []:
        FETCH_OUTCOMES.labels("metadata", host, outcome).inc()


def _forget_staged(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back, or counted by the commit
        session.info.pop(_STAGED, None)
