"""Webhook delivery on the real Postgres to a receiver on loopback (docs/webhooks.md): every
entry once and in log order after the receiver recovers, signed, in batches of at most 100;
filters; pausing after WEBHOOK_DISABLE_AFTER_H; refused addresses; and at least once across
a worker killed between its POST and its commit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from support.http_server import Posted, Reply, ScriptedServer

from shared.changes import entry, record
from shared.config import Settings
from shared.db import session_scope
from shared.metadata.fetch import MetadataFetcher
from shared.models import ChangeKind
from shared.webhooks import delivery
from shared.webhooks.delivery import Outcome, WebhookSettings, deliver, webhook_fetcher
from shared.webhooks.dispatch import due_subscriptions
from shared.webhooks.signing import HEADER, verify
from shared.webhooks.subscriptions import (
    create_subscription,
    get_subscription,
    recent_deliveries,
    resume_subscription,
)

SECRET = "a-webhook-secret-for-tests"
A = "SP2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS.alpha"
B = "SP2SYHR84SDJJDK8M09HFS4KBFXPPCX9H7RZ9YVTS.beta"
FAST = WebhookSettings(
    timeout_s=2.0, backoff_base_s=0.01, max_backoff_s=0.05, disable_after_s=3600.0
)


@pytest.fixture
def receiver() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def fetcher(settings: Settings) -> Iterator[MetadataFetcher]:
    """The workers' webhook fetcher; loopback allowed, as the test settings allow it."""
    with webhook_fetcher(replace(settings, webhook_timeout_s=2.0)) as client:
        yield client


def write(
    sessions: sessionmaker[Session],
    count: int,
    contract: str = A,
    kind: ChangeKind = ChangeKind.TOKEN_ADDED,
) -> list[int]:
    """`count` entries in one transaction; their ids."""
    with session_scope(sessions) as session:
        before = session.execute(text("SELECT COALESCE(max(id), 0) FROM changes")).scalar_one()
        record(session, [entry(kind, contract, n, details={"n": n}) for n in range(count)])
    with session_scope(sessions) as session:
        query = text("SELECT id FROM changes WHERE id > :before ORDER BY id")
        return list(session.scalars(query, {"before": before}))


def subscribe(sessions: sessionmaker[Session], url: str, **filters: Any) -> int:
    with session_scope(sessions) as session:
        return int(create_subscription(session, url, SECRET, **filters)["id"])


def subscription(sessions: sessionmaker[Session], subscription_id: int) -> dict[str, Any]:
    with session_scope(sessions) as session:
        found = get_subscription(session, subscription_id)
    assert found is not None
    return found


def deliver_until(
    sessions: sessionmaker[Session],
    fetcher: MetadataFetcher,
    subscription_id: int,
    done: Callable[[], bool],
    settings: WebhookSettings = FAST,
    timeout: float = 10.0,
) -> list[Outcome]:
    """Run deliveries as the dispatcher would (each when due) until `done`, with a deadline."""
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not delivered in {timeout} s: {outcomes}"
        outcomes += deliver(sessions, fetcher.post, settings, subscription_id)
        time.sleep(0.01)  # polling for the back-off to pass, not synchronising
    return outcomes


def acknowledged(posts: list[Posted]) -> list[dict[str, Any]]:
    return [json.loads(p.body) for p in posts if 200 <= p.status < 300]


def ids_of(payloads: list[dict[str, Any]]) -> list[int]:
    return [change["id"] for payload in payloads for change in payload["changes"]]


def test_a_receiver_that_fails_then_recovers_gets_every_entry_once_in_order(
    sessions: sessionmaker[Session], receiver: ScriptedServer, fetcher: MetadataFetcher
) -> None:
    url = receiver.script(
        "/hook",
        [
            Reply(500, b"down"),
            Reply(302, headers={"Location": "/elsewhere"}),
            Reply(503, b"still down"),
            Reply(200, b"ok"),
        ],
    )
    receiver.script("/elsewhere", [Reply(200)])
    write(sessions, 3)  # before the subscription: not delivered
    subscription_id = subscribe(sessions, url)
    ids = write(sessions, 150) + write(sessions, 100, contract=B)

    deliver_until(
        sessions,
        fetcher,
        subscription_id,
        lambda: subscription(sessions, subscription_id)["last_delivered_id"] == ids[-1],
    )

    payloads = acknowledged(receiver.posts)
    assert ids_of(payloads) == ids  # every entry, once, in log order
    assert [len(p["changes"]) for p in payloads] == [100, 100, 50]
    assert all(p["subscription_id"] == subscription_id for p in payloads)
    assert not any(p["redelivery"] for p in payloads[1:])
    failed = [json.loads(p.body) for p in receiver.posts[:3]]
    assert [p.status for p in receiver.posts[:3]] == [500, 302, 503]
    assert all(ids_of([p]) == ids[:100] for p in failed)  # the same first batch each time
    assert payloads[0]["redelivery"]  # it had been sent (and not acknowledged) before
    assert all(p.path == "/hook" for p in receiver.posts)  # the redirect was not followed
    for posted in receiver.posts:
        assert verify(SECRET, posted.headers[HEADER], posted.body)
        assert posted.headers["Content-Type"] == "application/json"
    first = payloads[0]["changes"][0]
    assert set(first) == {"id", "at", "kind", "contract_id", "token_id", "block_height", "details"}
    assert (first["kind"], first["contract_id"], first["token_id"]) == ("token_added", A, "0")

    state = subscription(sessions, subscription_id)
    assert (state["attempts"], state["last_error"], state["failing_since"]) == (0, None, None)
    with session_scope(sessions) as session:
        attempts = recent_deliveries(session, subscription_id)[::-1]
    assert [(a["outcome"], a["status_code"]) for a in attempts] == [
        ("failed", 500),
        ("failed", 302),
        ("failed", 503),
        ("delivered", 200),
        ("delivered", 200),
        ("delivered", 200),
    ]
    assert "redirects are not followed" in attempts[1]["error"]
    assert [(a["first_id"], a["last_id"], a["entries"]) for a in attempts[3:]] == [
        (ids[0], ids[99], 100),
        (ids[100], ids[199], 100),
        (ids[200], ids[249], 50),
    ]


def test_filters_send_only_matching_entries_and_move_past_the_others(
    sessions: sessionmaker[Session], receiver: ScriptedServer, fetcher: MetadataFetcher
) -> None:
    url = receiver.script("/hook", [Reply(200)])
    by_contract = subscribe(sessions, url, contracts=[B])
    by_kind = subscribe(sessions, url, kinds=["token_burned"])
    wanted_b = write(sessions, 5, contract=B)
    write(sessions, 5, contract=A)
    burned = write(sessions, 2, contract=A, kind=ChangeKind.TOKEN_BURNED)
    latest = write(sessions, 3, contract=A)[-1]

    for subscription_id in (by_contract, by_kind):
        deliver_until(
            sessions,
            fetcher,
            subscription_id,
            lambda s=subscription_id: subscription(sessions, s)["last_delivered_id"] == latest,
        )

    payloads = acknowledged(receiver.posts)
    sent = {p["subscription_id"]: ids_of([p]) for p in payloads}
    assert sent == {by_contract: wanted_b, by_kind: burned}


def test_a_subscription_starts_after_the_newest_entry_or_at_its_after(
    sessions: sessionmaker[Session], receiver: ScriptedServer, fetcher: MetadataFetcher
) -> None:
    url = receiver.script("/hook", [Reply(200)])
    old = write(sessions, 4)
    from_now = subscribe(sessions, url)
    from_after = subscribe(sessions, url, after=old[1])
    assert subscription(sessions, from_now)["last_delivered_id"] == old[-1]
    deliver_until(
        sessions,
        fetcher,
        from_after,
        lambda: subscription(sessions, from_after)["last_delivered_id"] == old[-1],
    )
    assert ids_of(acknowledged(receiver.posts)) == old[2:]
    assert deliver(sessions, fetcher.post, FAST, from_now) == [Outcome("caught_up")]


def test_an_endpoint_failing_longer_than_the_limit_is_paused_with_the_reason(
    sessions: sessionmaker[Session], receiver: ScriptedServer, fetcher: MetadataFetcher
) -> None:
    url = receiver.script("/hook", [Reply(500, b"broken")])
    subscription_id = subscribe(sessions, url)
    write(sessions, 2)
    (first,) = deliver(sessions, fetcher.post, FAST, subscription_id)
    assert first.kind == "failed"
    state = subscription(sessions, subscription_id)
    assert (state["status"], state["attempts"]) == ("active", 1)
    assert state["failing_since"] is not None
    with session_scope(sessions) as session:  # it has been failing for two hours
        session.execute(
            text(
                "UPDATE webhook_subscriptions SET failing_since = now() - interval '2 hours', "
                "next_attempt_at = now() WHERE id = :id"
            ),
            {"id": subscription_id},
        )

    deliver(sessions, fetcher.post, FAST, subscription_id)

    state = subscription(sessions, subscription_id)
    assert (state["status"], state["attempts"]) == ("paused", 2)
    assert state["paused_reason"].startswith("Endpoint failing since ")
    assert "HTTP 500" in state["paused_reason"]
    assert deliver(sessions, fetcher.post, FAST, subscription_id) == [Outcome("busy")]
    with session_scope(sessions) as session:
        assert due_subscriptions(session).due == []
        resume_subscription(session, subscription_id)
    receiver.script("/hook", [Reply(200)])
    deliver(sessions, fetcher.post, FAST, subscription_id)
    state = subscription(sessions, subscription_id)
    assert (state["status"], state["attempts"], state["paused_reason"]) == ("active", 0, None)
    assert len(acknowledged(receiver.posts)) == 1


def test_a_private_address_is_refused_with_the_guards_reason(
    sessions: sessionmaker[Session], settings: Settings, receiver: ScriptedServer
) -> None:
    url = receiver.script("/hook", [Reply(200)])
    subscription_id = subscribe(sessions, url)
    write(sessions, 1)
    strict = replace(settings, metadata_fetch_allow_private_networks=False)
    with webhook_fetcher(strict) as guarded:
        (outcome,) = deliver(sessions, guarded.post, FAST, subscription_id)
    assert outcome.kind == "refused"
    assert "loopback" in (outcome.error or "")
    assert receiver.posts == []
    with session_scope(sessions) as session:
        (attempt,) = recent_deliveries(session, subscription_id)
    assert (attempt["outcome"], attempt["status_code"]) == ("refused", None)
    assert "loopback" in subscription(sessions, subscription_id)["last_error"]


def test_a_worker_killed_after_its_post_resends_the_batch_flagged_as_a_redelivery(
    sessions: sessionmaker[Session],
    receiver: ScriptedServer,
    fetcher: MetadataFetcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = receiver.script("/hook", [Reply(200)])
    subscription_id = subscribe(sessions, url)
    ids = write(sessions, 120)
    real_finish = delivery._finish_delivered

    def killed(*args: Any) -> None:
        raise SystemExit("worker killed between the POST and the commit")

    monkeypatch.setattr(delivery, "_finish_delivered", killed)
    with pytest.raises(SystemExit):
        deliver(sessions, fetcher.post, FAST, subscription_id)
    monkeypatch.setattr(delivery, "_finish_delivered", real_finish)
    assert subscription(sessions, subscription_id)["last_delivered_id"] == ids[0] - 1
    # Its lease still holds the subscription: nobody else delivers meanwhile.
    assert deliver(sessions, fetcher.post, FAST, subscription_id) == [Outcome("busy")]
    with session_scope(sessions) as session:  # the lease runs out
        session.execute(
            text("UPDATE webhook_subscriptions SET lease_until = now() WHERE id = :id"),
            {"id": subscription_id},
        )

    deliver_until(
        sessions,
        fetcher,
        subscription_id,
        lambda: subscription(sessions, subscription_id)["last_delivered_id"] == ids[-1],
    )

    payloads = acknowledged(receiver.posts)
    assert [ids_of([p]) for p in payloads] == [ids[:100], ids[:100], ids[100:]]
    assert [p["redelivery"] for p in payloads] == [False, True, False]
    seen: list[int] = []
    for change_id in ids_of(payloads):  # what a consumer does: skip ids it has
        if not seen or change_id > seen[-1]:
            seen.append(change_id)
    assert seen == ids


def test_the_dispatcher_returns_each_due_subscription_once_with_its_lag(
    sessions: sessionmaker[Session], receiver: ScriptedServer, fetcher: MetadataFetcher
) -> None:
    url = receiver.script("/hook", [Reply(200)])
    behind = subscribe(sessions, url)
    ids = write(sessions, 3)
    caught_up = subscribe(sessions, url)
    with session_scope(sessions) as session:
        first = due_subscriptions(session)
    with session_scope(sessions) as session:
        second = due_subscriptions(session)
    assert first.due == [behind]
    assert second.due == []  # already enqueued
    lags = {lag.subscription_id: lag for lag in first.lags}
    assert lags[behind].entries == 3
    assert lags[behind].seconds >= 0
    assert (lags[caught_up].entries, lags[caught_up].seconds) == (0, 0)
    with session_scope(sessions) as session:  # its message was lost a while ago
        assert due_subscriptions(session, resend_after_s=0).due == [behind]

    deliver(sessions, fetcher.post, FAST, behind)

    assert subscription(sessions, behind)["last_delivered_id"] == ids[-1]
    with session_scope(sessions) as session:
        assert due_subscriptions(session).due == []
    write(sessions, 1)
    with session_scope(sessions) as session:
        assert sorted(due_subscriptions(session).due) == [behind, caught_up]


def test_a_receiver_that_answers_too_late_is_a_failure_and_attempts_are_bounded(
    sessions: sessionmaker[Session],
    settings: Settings,
    receiver: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = receiver.script("/hook", [Reply(200, delay_s=1.5)])
    subscription_id = subscribe(sessions, url)
    write(sessions, 1)
    with webhook_fetcher(replace(settings, webhook_timeout_s=0.3)) as impatient:
        (outcome,) = deliver(sessions, impatient.post, FAST, subscription_id)
    assert outcome.kind == "failed"
    assert "Timed out" in (outcome.error or "")
    assert subscription(sessions, subscription_id)["next_attempt_at"] is not None

    monkeypatch.setattr(delivery, "DELIVERIES_KEPT", 2)
    receiver.script("/hook", [Reply(500)])
    with webhook_fetcher(settings) as fetcher:
        deliver_until(
            sessions,
            fetcher,
            subscription_id,
            lambda: subscription(sessions, subscription_id)["attempts"] >= 4,
        )
    with session_scope(sessions) as session:
        kept = recent_deliveries(session, subscription_id)
    assert [(a["outcome"], a["status_code"]) for a in kept] == [("failed", 500)] * 2


def test_a_subscription_behind_the_pruning_horizon_is_paused_saying_so(
    sessions: sessionmaker[Session], receiver: ScriptedServer, fetcher: MetadataFetcher
) -> None:
    url = receiver.script("/hook", [Reply(200)])
    subscription_id = subscribe(sessions, url, after=0)
    ids = write(sessions, 3)
    with session_scope(sessions) as session:
        session.execute(text("UPDATE changes_horizon SET pruned_through = :id"), {"id": ids[0]})

    (outcome,) = deliver(sessions, fetcher.post, FAST, subscription_id)

    assert outcome.kind == "pruned"
    state = subscription(sessions, subscription_id)
    assert state["status"] == "paused"
    assert state["paused_reason"].startswith(f"Changes pruned: entries up to id {ids[0]}")
    assert f"after={ids[-1]}" in state["paused_reason"]
    assert receiver.posts == []
