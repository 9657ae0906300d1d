"""Dynamic tokens are refreshed when due, however many at once
(docs/reference-differences.md#dynamic-refresh)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func

from shared.models import JobStatus


def dynamic_tokens(chain, monitor, db, tokens: int = 1, **notification) -> str:  # type: ignore[no-untyped-def]
    """A contract whose tokens a dynamic notification covers, every job done again."""
    principal = db.contract(tokens=tokens)
    chain.notify(chain.block(), principal, update_mode="dynamic", **notification)
    monitor.run()
    monitor.broker.take()
    db.set_jobs(JobStatus.DONE)
    return principal


def refreshed(monitor) -> int:  # type: ignore[no-untyped-def]
    return len([m for m in monitor.broker.take() if not m.is_contract])


def test_enqueues_dynamic_tokens_for_refresh_with_standard_interval(
    chain, monitor, db, following
) -> None:
    principal = dynamic_tokens(chain, monitor, db)
    db.age_tokens(principal, timedelta(days=2))
    chain.block()
    monitor.run(dynamic_refresh_interval_s=86_400)
    assert refreshed(monitor) == 1
    assert db.token_job(principal, 1).status == JobStatus.QUEUED


def test_enqueues_dynamic_tokens_for_refresh_with_ttl(chain, monitor, db, following) -> None:
    principal = dynamic_tokens(chain, monitor, db, ttl=3600)
    db.age_tokens(principal, timedelta(hours=2))
    chain.block()
    monitor.run(dynamic_refresh_interval_s=99_999)
    assert refreshed(monitor) == 1


def test_tokens_not_yet_due_are_left_alone(chain, monitor, db, following) -> None:
    principal = dynamic_tokens(chain, monitor, db, ttl=3 * 3600)
    db.age_tokens(principal, timedelta(hours=2))
    chain.block()
    monitor.run(dynamic_refresh_interval_s=60)
    assert refreshed(monitor) == 0
    assert db.token_job(principal, 1).status == JobStatus.DONE


def test_any_number_of_due_tokens_is_refreshed(chain, monitor, db, following) -> None:
    principal = dynamic_tokens(chain, monitor, db, tokens=50)
    db.age_tokens(principal, timedelta(days=2))
    chain.block()
    monitor.run()
    assert refreshed(monitor) == 50


def test_a_later_standard_notification_ends_the_refreshes(chain, monitor, db, following) -> None:
    principal = dynamic_tokens(chain, monitor, db)
    chain.notify(chain.block(), principal, update_mode="standard")
    monitor.run()
    db.set_jobs(JobStatus.DONE)
    monitor.broker.take()
    db.age_tokens(principal, timedelta(days=2))
    chain.block()
    monitor.run()
    assert refreshed(monitor) == 0


def test_a_failed_refresh_is_retried_once_per_interval(chain, monitor, db, following) -> None:
    principal = dynamic_tokens(chain, monitor, db, ttl=3600)
    db.age_tokens(principal, timedelta(days=2))
    db.set_jobs(JobStatus.FAILED)  # it just failed
    chain.block()
    monitor.run()
    assert refreshed(monitor) == 0
    db.set_jobs(JobStatus.FAILED, updated_at=func.now() - timedelta(hours=2))
    chain.block()
    monitor.run()
    assert refreshed(monitor) == 1
