"""The change log's writer on the real Postgres: entries commit with their transaction, ids
are allocated in commit order under the change-log lock, writes are set-based, and pruning
moves the horizon (docs/change-feed.md)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine, event, text, update
from sqlalchemy.orm import Session, sessionmaker
from support.changes import logged
from support.processes import wait_until

from shared.changes import entry, prune_changes, prune_expired_changes, record, record_rollback
from shared.db import session_scope
from shared.models import Change, ChangeKind

ADDED, BURNED = ChangeKind.TOKEN_ADDED, ChangeKind.TOKEN_BURNED
RETENTION = timedelta(days=7)


@pytest.fixture
def reader(settings) -> Iterator[Engine]:
    """An autocommit connection pool, as the API reads: every statement its own snapshot."""
    engine = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def committed_ids(reader: Engine, after: int = 0) -> list[int]:
    with reader.connect() as conn:
        query = text("SELECT id FROM changes WHERE id > :after ORDER BY id")
        return list(conn.scalars(query, {"after": after}))


def statements_of(sessions: sessionmaker[Session]) -> tuple[list[str], Any]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    return statements, lambda: event.remove(engine, "before_cursor_execute", count)


def test_entries_are_written_when_the_transaction_commits_in_the_order_recorded(
    sessions, reader
) -> None:
    with session_scope(sessions) as s:
        record(s, [entry(ADDED, "SP1.a", 2, block=(7, "0x07"), details={"token_type": "nft"})])
        record(s, [entry(ChangeKind.CONTRACT_ADDED, "SP1.a"), entry(BURNED, "SP1.a", 1)])
        assert committed_ids(reader) == []  # nothing before the commit
    entries = logged(sessions)
    assert [e.key for e in entries] == [
        ("token_added", "SP1.a", 2),
        ("contract_added", "SP1.a", None),
        ("token_burned", "SP1.a", 1),
    ]
    assert (entries[0].block_height, entries[0].index_block_hash) == (7, "0x07")
    assert entries[0].details == {"token_type": "nft"}
    assert entries[1].details == {}
    assert entries[0].id < entries[1].id < entries[2].id


def test_a_rolled_back_transaction_leaves_no_entries(sessions) -> None:
    def failing_change() -> None:
        with session_scope(sessions) as s:
            record(s, [entry(ADDED, "SP1.a", 1)])
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    session = sessions()
    record(session, [entry(ADDED, "SP1.b", 1)])
    session.rollback()
    session.commit()  # a later commit of the same session writes nothing it forgot
    session.close()
    assert logged(sessions) == []


def test_a_token_number_beyond_64_bits_is_kept_exactly(sessions) -> None:
    with session_scope(sessions) as s:
        record(s, [entry(ADDED, "SP1.a", 2**128 - 1)])
    assert logged(sessions)[0].token == 2**128 - 1


def test_many_entries_take_a_lock_one_insert_per_ten_thousand_and_notify(sessions) -> None:
    statements, stop = statements_of(sessions)
    with session_scope(sessions) as s:
        record(s, (entry(ADDED, "SP1.a", n) for n in range(1, 25_001)))
    stop()
    verbs = [_verb(sql) for sql in statements]
    assert verbs == ["lock", "insert", "insert", "insert", "notify"]
    entries = logged(sessions)
    assert [e.token for e in entries] == list(range(1, 25_001))


def _verb(sql: str) -> str:
    if "pg_advisory_xact_lock" in sql:
        return "lock"
    return "notify" if "pg_notify" in sql else sql.split()[0].lower()


def waiting_for_the_lock(reader: Engine) -> bool:
    with reader.connect() as conn:
        waiting = conn.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    return bool(waiting)


def test_a_second_writer_waits_for_the_first_to_commit_and_gets_later_ids(sessions, reader) -> None:
    written, release = threading.Event(), threading.Event()
    first = sessions()
    record(first, [entry(ADDED, "SP1.first", 1), entry(ADDED, "SP1.first", 2)])

    def hold(_session: Session) -> None:  # runs after the entries are written, before COMMIT
        written.set()
        release.wait(30)

    event.listen(first, "before_commit", hold)

    def commit_first() -> None:
        first.commit()
        first.close()

    def second_writer() -> None:
        with session_scope(sessions) as s:
            record(s, [entry(ADDED, "SP1.second", 1)])

    threads = [threading.Thread(target=commit_first), threading.Thread(target=second_writer)]
    threads[0].start()
    assert written.wait(10)
    threads[1].start()
    try:
        wait_until(lambda: waiting_for_the_lock(reader), 10, "the second writer to wait")
        assert committed_ids(reader) == []  # the first's ids are taken, not yet committed
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    entries = logged(sessions)
    assert [e.contract for e in entries] == ["SP1.first", "SP1.first", "SP1.second"]
    assert entries[0].id < entries[1].id < entries[2].id


def test_a_consumer_following_concurrent_writers_misses_no_entry(sessions, reader) -> None:
    """Writers whose commits take a while after their entries are written; a consumer polls
    `id > after` and moves `after` to the last id it saw. With ids allocated outside commit
    order it would step over an id that commits late, and never see it."""
    writers, transactions = 4, 25
    done = threading.Event()
    seen: list[int] = []
    failures: list[BaseException] = []

    def slow_commit(_session: Session) -> None:
        threading.Event().wait(random.uniform(0, 0.004))  # noqa: S311 - jitter, not security

    def write(n: int) -> None:
        try:
            for t in range(transactions):
                with session_scope(sessions) as s:
                    record(s, [entry(ADDED, f"SP{n}.c", t * 2 + i) for i in range(2)])
                    event.listen(s, "before_commit", slow_commit)
        except BaseException as exc:
            failures.append(exc)

    def consume() -> None:
        while not done.is_set():
            seen.extend(committed_ids(reader, seen[-1] if seen else 0))

    consumer = threading.Thread(target=consume)
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    consumer.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    consumer.join(30)
    seen.extend(committed_ids(reader, seen[-1] if seen else 0))
    assert not failures
    assert len(seen) == writers * transactions * 2
    assert seen == committed_ids(reader)


def test_a_reorg_names_the_entries_of_its_orphaned_blocks(sessions) -> None:
    with session_scope(sessions) as s:
        record(
            s,
            [
                entry(ChangeKind.CONTRACT_ADDED, "SP1.a", block=(11, "0x11")),
                entry(ADDED, "SP1.a", 1, block=(11, "0x11")),
                entry(ADDED, "SP1.b", 5, block=(10, "0x10")),  # the fork point's: kept
                entry(ChangeKind.OWNER_CHANGED, "SP1.b", 5, block=(12, "0x12")),
                entry(ChangeKind.METADATA_UPDATED, "SP1.b", 5),  # no block
                entry(ChangeKind.OWNER_CHANGED, "SP1.b", 5, block=(12, "0x12-other-fork")),
                entry(ChangeKind.OWNER_CHANGED, "SP1.a", 1, block=(13, "0x13")),
            ],
        )
    before = logged(sessions)
    with session_scope(sessions) as s:
        assert record_rollback(s, 10, ["0x11", "0x12", "0x13"]) == 3
    undone = logged(sessions, ChangeKind.ROLLED_BACK)
    ids = [e.id for e in before]
    assert [(e.contract, e.token, e.details) for e in undone] == [
        ("SP1.a", None, {"undone": [ids[0]]}),
        ("SP1.a", 1, {"undone": [ids[1], ids[6]]}),
        ("SP1.b", 5, {"undone": [ids[3]]}),
    ]
    assert all(e.block_height is None for e in undone)


def age(sessions: sessionmaker[Session], ids: list[int], days: int) -> None:
    with session_scope(sessions) as s:
        s.execute(
            update(Change)
            .where(Change.id.in_(ids))
            .values(at=text(f"now() - interval '{days} days'"))
        )


def horizon(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as s:
        return int(s.scalar(text("SELECT pruned_through FROM changes_horizon")))


def test_pruning_stops_at_the_first_entry_still_kept_and_moves_the_horizon(sessions) -> None:
    with session_scope(sessions) as s:
        record(s, (entry(ADDED, "SP1.a", n) for n in range(1, 6)))
    ids = [e.id for e in logged(sessions)]
    age(sessions, [ids[0], ids[1], ids[3]], days=8)  # the 4th is old, but after a new one
    with session_scope(sessions) as s:
        assert prune_changes(s, RETENTION) == 2
    assert [e.id for e in logged(sessions)] == ids[2:]
    assert horizon(sessions) == ids[1]
    with session_scope(sessions) as s:
        assert prune_changes(s, RETENTION) == 0
    assert horizon(sessions) == ids[1]


def test_a_pruning_run_deletes_in_bounded_transactions(sessions) -> None:
    with session_scope(sessions) as s:
        record(s, (entry(ADDED, "SP1.a", n) for n in range(1, 8)))
    ids = [e.id for e in logged(sessions)]
    age(sessions, ids, days=8)
    statements, stop = statements_of(sessions)
    assert prune_expired_changes(sessions, RETENTION, batch=3, batches=2) == 6
    stop()
    assert sum("DELETE FROM changes" in sql for sql in statements) == 2
    assert horizon(sessions) == ids[5]
    assert prune_expired_changes(sessions, RETENTION, batch=3) == 1
    assert logged(sessions) == []
    assert horizon(sessions) == ids[6]


def test_entries_wait_for_the_commit_of_a_savepoint_s_transaction(sessions) -> None:
    with session_scope(sessions) as s:
        with s.begin_nested():
            record(s, [entry(ADDED, "SP1.a", 1)])
        assert s.scalar(text("SELECT count(*) FROM changes")) == 0
    assert len(logged(sessions)) == 1


def written(kind: ChangeKind) -> float:
    value = REGISTRY.get_sample_value("token_metadata_changes_written_total", {"kind": kind.value})
    assert value is not None  # every kind is exported from the start, at 0
    return value


def test_entries_are_counted_by_kind_when_their_transaction_commits(sessions) -> None:
    kinds = (ADDED, BURNED, ChangeKind.CONTRACT_ADDED)
    before = {kind: written(kind) for kind in kinds}
    with session_scope(sessions) as s:
        record(s, [entry(ADDED, "SP1.a", 1), entry(ADDED, "SP1.a", 2)])
        record(s, [entry(ChangeKind.CONTRACT_ADDED, "SP1.a")])
        with s.begin_nested():  # a savepoint's commit counts nothing: the entries wait
            record(s, [entry(BURNED, "SP1.a", 1)])
        assert written(BURNED) == before[BURNED]
    assert {kind: written(kind) - before[kind] for kind in kinds} == {
        ADDED: 2,
        BURNED: 1,
        ChangeKind.CONTRACT_ADDED: 1,
    }


def test_a_rolled_back_transaction_counts_nothing_even_after_writing_its_entries(
    sessions,
) -> None:
    before = written(ADDED)

    def failing_change() -> None:
        with session_scope(sessions) as s:
            record(s, [entry(ADDED, "SP1.a", 1)])
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert written(ADDED) == before

    def fail_after_the_entries(session: Session) -> None:
        assert session.scalar(text("SELECT count(*) FROM changes")) == 2  # written...
        raise RuntimeError("a later before_commit hook failed")  # ...and rolled back

    session = sessions()
    record(session, [entry(ADDED, "SP1.b", 1), entry(ADDED, "SP1.b", 2)])
    event.listen(session, "before_commit", fail_after_the_entries)
    with pytest.raises(RuntimeError):
        session.commit()
    session.rollback()
    event.remove(session, "before_commit", fail_after_the_entries)
    session.commit()
    session.close()
    assert logged(sessions) == []
    assert written(ADDED) == before
