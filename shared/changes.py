"""The change log's one writer (docs/change-feed.md).

Code that changes what the API serves calls `record(session, entries)` in the same
transaction. The entries wait on the session and are written when it commits, as the
transaction's last statements, after the change-log lock: ids are then allocated in commit
order, so a consumer reading `id > after` never misses an entry that commits late
(docs/change-feed.md#ordering). A transaction that rolls back writes none. Entries are
counted by kind in `token_metadata_changes_written_total` once their transaction committed
(docs/change-feed.md#metrics).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import event, text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from shared.db import session_scope
from shared.models import ChangeKind
from shared.sql_params import array_of, joined, json_rows

# Any constant works, as long as every process uses the same one.
CHANGES_LOCK_KEY = 0x544D5F434847  # "TM_CHG"
INSERT_BATCH = 10_000  # entries per INSERT statement
PRUNE_BATCH = 10_000  # entries deleted per pruning transaction
PRUNE_BATCHES_PER_RUN = 10

Entry = dict[str, Any]
_PENDING = "token_metadata_changes"
_WRITTEN = "token_metadata_changes_written"  # by kind, written by the commit under way
# Told at every commit that wrote entries: it wakes the live stream (docs/change-feed.md#stream).
NOTIFY_CHANNEL = "token_metadata_changes"

# In the process's default registry (a worker's exporter serves it whole, workers/metrics.py);
# every kind is listed from the start, at 0.
ENTRIES_WRITTEN = Counter(
    "token_metadata_changes_written",
    "Change-log entries written by committed transactions, by kind",
    ["kind"],
)
for _kind in ChangeKind:
    ENTRIES_WRITTEN.labels(_kind.value)

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# Postgres delivers it when the transaction commits, and only then.
_NOTIFY = text(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')")
# In the order recorded (ORDINALITY), so a transaction's own entries keep their order too.
_INSERT = text(
    """
    INSERT INTO changes (kind, contract_principal, token_number, block_height,
                         index_block_hash, details)
    SELECT CAST(e.kind AS change_kind), e.contract, e.token, e.height, e.hash,
           COALESCE(e.details, '{}'::jsonb)
      FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb))
                      AS (kind text, contract text, token numeric, height integer,
                          hash text, details jsonb))
           WITH ORDINALITY AS e(kind, contract, token, height, hash, details, n)
     ORDER BY e.n
    """
)
# The entries of the orphaned blocks, one group per contract or token
# (docs/change-feed.md#re-orgs).
_UNDONE = text(
    f"""
    SELECT contract_principal, token_number, array_agg(id ORDER BY id) AS ids
      FROM changes
     WHERE block_height > :height AND index_block_hash = ANY({array_of(":hashes", "text")})
     GROUP BY contract_principal, token_number
     ORDER BY min(id)
    """  # noqa: S608 - composed of constant SQL, values are bound
)
# The oldest entries, at most one batch, up to the first one still inside the retention
# window; the horizon moves to the highest id deleted (docs/change-feed.md#retention).
_PRUNE = text(
    """
    WITH oldest AS (
        SELECT id, at FROM changes ORDER BY id LIMIT :batch
    ), upto AS (
        SELECT COALESCE((SELECT min(id) - 1 FROM oldest WHERE at >= now() - :age),
                        (SELECT max(id) FROM oldest)) AS id
    ), pruned AS (
        DELETE FROM changes c USING upto WHERE c.id <= upto.id RETURNING c.id
    ), moved AS (
        UPDATE changes_horizon
           SET pruned_through = GREATEST(pruned_through, (SELECT max(id) FROM pruned))
         WHERE EXISTS (SELECT FROM pruned)
    )
    SELECT count(*) FROM pruned
    """
)


def entry(
    kind: ChangeKind,
    contract: str,
    token_number: int | None = None,
    *,
    block: tuple[int, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> Entry:
    """One entry: a contract's (no token number) or a token's; `block` is the (height,
    index_block_hash) of the block whose effect it records, so a re-org can undo it."""
    height, block_hash = block if block is not None else (None, None)
    return {
        "kind": kind.value,
        "contract": contract,
        "token": token_number,
        "height": height,
        "hash": block_hash,
        "details": details,
    }


def record(session: Session, entries: Iterable[Entry]) -> None:
    """Add entries to the session's transaction; they are written when it commits. (Inside
    a savepoint they wait for the outer commit, and stay if only the savepoint rolls back:
    nothing records inside one.)"""
    if session.get_transaction() is None:  # begun now, so that a rollback forgets them
        session.begin()
    pending: list[Entry] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        if not event.contains(session, "before_commit", _write_pending):
            event.listen(session, "before_commit", _write_pending)
            event.listen(session, "after_commit", _count_written)
            event.listen(session, "after_transaction_end", _forget_pending)
    pending.extend(entries)


def _write_pending(session: Session) -> None:
    """The transaction's last statements: the lock, the entries in a few INSERTs, and the
    notification that wakes the live stream at the commit."""
    if session.in_nested_transaction():  # a savepoint: its entries wait for the commit
        return
    pending: list[Entry] = session.info.pop(_PENDING, None) or []
    if not pending:
        return
    # Encoded before the lock, which other writers' commits wait for.
    batches = [
        json_rows(pending[start : start + INSERT_BATCH])
        for start in range(0, len(pending), INSERT_BATCH)
    ]
    session.execute(_LOCK, {"key": CHANGES_LOCK_KEY})
    for rows in batches:
        session.execute(_INSERT, {"rows": rows})
    session.execute(_NOTIFY)
    # Counted once the commit succeeded (`_count_written`); a rollback forgets them.
    session.info[_WRITTEN] = Tally(e["kind"] for e in pending)


def _count_written(session: Session) -> None:
    """after_commit: the entries the commit wrote, in `token_metadata_changes_written_total`."""
    written: Tally[str] | None = session.info.pop(_WRITTEN, None)
    if written:
        for kind, count in written.items():
            ENTRIES_WRITTEN.labels(kind).inc(count)


def _forget_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back, or written by the commit
        session.info.pop(_PENDING, None)
        session.info.pop(_WRITTEN, None)


def record_rollback(session: Session, height: int, orphaned: Sequence[str]) -> int:
    """A re-org to `height` undoes the entries of the `orphaned` blocks above it: one
    `rolled_back` entry per contract or token names them. Returns how many."""
    if not orphaned:
        return 0
    groups = session.execute(_UNDONE, {"height": height, "hashes": joined(orphaned)}).all()
    record(
        session,
        (
            entry(
                ChangeKind.ROLLED_BACK,
                group.contract_principal,
                None if group.token_number is None else int(group.token_number),
                details={"undone": list(group.ids)},
            )
            for group in groups
        ),
    )
    return len(groups)


def prune_changes(session: Session, retention: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` of the oldest entries written more than `retention` ago and
    move the horizon past them; returns how many."""
    return int(session.execute(_PRUNE, {"batch": batch, "age": retention}).scalar_one())


def prune_expired_changes(
    sessions: sessionmaker[Session],
    retention: timedelta,
    *,
    batch: int = PRUNE_BATCH,
    batches: int = PRUNE_BATCHES_PER_RUN,
) -> int:
    """Beat's pruning run: up to `batches` transactions of `batch` entries each, so that no
    transaction deletes much at once; returns how many entries went."""
    pruned = 0
    for _ in range(batches):
        with session_scope(sessions) as session:
            deleted = prune_changes(session, retention, batch)
        pruned += deleted
        if deleted < batch:
            break
    return pruned
