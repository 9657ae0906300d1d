"""SIP-019 notifications, written as print events in the Stacks API database
(docs/chain-monitor.md#notifications)."""

from __future__ import annotations

import time

from devnet.chain_events import metadata_update
from devnet.scenario import deployer_address
from shared import clarity
from shared.models import JobStatus, Sip, TokenUpdateMode
from shared.queues import REFRESH_QUEUE, TOKENS_QUEUE

STANDARD, FROZEN, DYNAMIC = (
    TokenUpdateMode.STANDARD,
    TokenUpdateMode.FROZEN,
    TokenUpdateMode.DYNAMIC,
)


def refreshed(monitor) -> list[int]:  # type: ignore[no-untyped-def]
    """Ids of the token jobs the last run dispatched."""
    return sorted(m.job_id for m in monitor.broker.take() if not m.is_contract)


def test_enqueues_notification_for_all_tokens_in_contract(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=3)
    chain.blocks_until(99)
    chain.notify(chain.block(), principal)
    monitor.run()
    jobs = [db.token_job(principal, n) for n in (1, 2, 3)]
    assert refreshed(monitor) == [job.id for job in jobs]
    assert {job.status for job in jobs} == {JobStatus.QUEUED}
    assert len(db.notifications(principal)) == 3
    latest = db.latest_notification(principal, 1)
    assert (latest.update_mode, latest.block_height) == (STANDARD, 100)


def test_enqueues_notification_for_specific_tokens_in_contract(
    chain, monitor, db, following
) -> None:
    principal = db.contract(tokens=3)
    chain.notify(chain.block(), principal, token_ids=[1, 2])
    monitor.run()
    assert refreshed(monitor) == [db.token_job(principal, n).id for n in (1, 2)]
    assert db.token_job(principal, 3).status == JobStatus.DONE
    assert {row.token_number for row in db.notifications(principal)} == {1, 2}


def test_updates_token_refresh_mode(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    chain.notify(chain.block(), principal, token_ids=[1], update_mode="frozen", strings="utf8")
    monitor.run()
    assert db.latest_notification(principal).update_mode == FROZEN


def test_ignores_notification_for_frozen_tokens(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    chain.blocks_until(89)
    chain.notify(chain.block(), principal, update_mode="frozen")  # block 90
    monitor.run()
    monitor.broker.take()
    db.set_jobs(JobStatus.DONE)
    chain.blocks_until(99)
    chain.notify(chain.block(), principal)  # block 100
    monitor.run()
    assert refreshed(monitor) == []
    assert db.jobs(JobStatus.PENDING) == db.jobs(JobStatus.QUEUED) == []
    latest = db.latest_notification(principal)
    assert (latest.update_mode, latest.block_height) == (FROZEN, 90)


def test_second_token_notification_replaces_previous(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    chain.blocks_until(89)
    chain.notify(chain.block(), principal, token_ids=[1], update_mode="dynamic", ttl=3600)
    monitor.run()
    first = db.latest_notification(principal)
    assert (first.update_mode, first.ttl, first.block_height) == (DYNAMIC, 3600, 90)
    chain.blocks_until(99)
    chain.notify(chain.block(), principal, token_ids=[1], update_mode="standard")
    monitor.run()
    latest = db.latest_notification(principal)
    assert (latest.update_mode, latest.ttl, latest.block_height) == (STANDARD, None, 100)


def test_contract_notification_replaces_token_notification(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    chain.blocks_until(89)
    chain.notify(chain.block(), principal, token_ids=[1])
    chain.blocks_until(99)
    chain.notify(chain.block(), principal)
    monitor.run()
    assert db.latest_notification(principal).block_height == 100


def test_rolls_back_notification(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    chain.blocks_until(100)
    block = chain.block()  # 101
    chain.notify(block, principal)
    monitor.run()
    assert db.latest_notification(principal) is not None
    chain.orphan(101)
    chain.block()
    monitor.run()
    assert db.notifications(principal) == []


def test_second_notification_rollback_restores_pointer_to_the_first(
    chain, monitor, db, following
) -> None:
    principal = db.contract(tokens=1)
    chain.blocks_until(99)
    chain.notify(chain.block(), principal, update_mode="standard")  # 100
    chain.notify(chain.block(), principal, update_mode="frozen")  # 101
    monitor.run()
    assert db.latest_notification(principal).update_mode == FROZEN
    chain.orphan(101)
    chain.block()
    monitor.run()
    latest = db.latest_notification(principal)
    assert (latest.update_mode, latest.block_height) == (STANDARD, 100)


def test_ignores_other_contract_log_events(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    chain.print(
        chain.block(), principal, clarity.StringAscii("hello"), sender=principal.split(".")[0]
    )
    chain.print(
        chain.block(),
        principal,
        clarity.ClarityTuple({"notification": clarity.StringAscii("something-else")}),
    )
    monitor.run()
    assert refreshed(monitor) == []
    assert db.notifications(principal) == []


def test_ignores_notification_from_incorrect_sender(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    stranger = deployer_address("stranger")
    chain.notify(chain.block(), principal, emitter=f"{stranger}.notifier", sender=stranger)
    monitor.run()
    assert refreshed(monitor) == []
    assert db.notifications(principal) == []


def test_accepts_the_contract_itself_or_its_deployer(chain, monitor, db, following) -> None:
    by_contract, by_deployer = db.contract(tokens=1), db.contract(tokens=1)
    block = chain.block()
    chain.notify(block, by_contract, sender=deployer_address("anyone"))
    deployer = by_deployer.split(".")[0]
    chain.notify(block, by_deployer, emitter=f"{deployer}.notifier", sender=deployer)
    monitor.run()
    assert len(refreshed(monitor)) == 2
    assert db.latest_notification(by_contract) is not None
    assert db.latest_notification(by_deployer) is not None


def test_reads_every_string_encoding_and_ft_notifications(chain, monitor, db, following) -> None:
    ft = db.contract(Sip.SIP_010, tokens=1)
    nft = db.contract(tokens=2)
    block = chain.block()
    chain.notify(block, ft, token_class="ft", update_mode="dynamic", strings="buffer")
    chain.notify(block, nft, token_ids=[2], contract_id_as_string=True, strings="utf8")
    monitor.run()
    assert db.latest_notification(ft).update_mode == DYNAMIC
    assert [row.token_number for row in db.notifications(nft)] == [2]


def test_unknown_update_mode_is_standard(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    chain.notify(chain.block(), principal, update_mode="sometimes")
    monitor.run()
    assert db.latest_notification(principal).update_mode == STANDARD


def test_malformed_prints_never_stall_ingestion(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    block = chain.block()
    good = clarity.serialize(metadata_update("nft", principal))
    chain.print(block, principal, good[:-3])  # truncated
    chain.print(block, principal, b"\x0c" + good)  # garbage prefix
    chain.print(block, principal, b"\x0a" * 40 + good)  # nested deeper than Clarity allows
    sft_class = metadata_update("sft", principal, token_ids=[1])
    chain.print(block, principal, sft_class)
    chain.notify(chain.block(), principal)  # the next block still counts
    monitor.run()
    assert db.checkpoint()[0] == block.height + 1
    assert [row.block_height for row in db.notifications(principal)] == [block.height + 1]


def test_refreshes_wait_behind_new_tokens(chain, monitor, db, following) -> None:
    processed = db.contract(tokens=2)
    fresh = db.contract(tokens=1, processed=False)
    block = chain.block()
    chain.notify(block, processed)
    chain.notify(block, fresh)
    monitor.run()
    queues = {m.job_id: m.queue for m in monitor.broker.take()}
    assert queues == {
        db.token_job(processed, 1).id: REFRESH_QUEUE,
        db.token_job(processed, 2).id: REFRESH_QUEUE,
        db.token_job(fresh, 1).id: TOKENS_QUEUE,
    }


def test_contract_wide_notification_over_ten_thousand_tokens(chain, monitor, db, following) -> None:
    principal = db.contract(tokens=1)
    db.add_tokens(principal, 2, 10_000)
    chain.notify(chain.block(), principal, update_mode="dynamic", ttl=60)
    started = time.perf_counter()
    monitor.run()
    elapsed = time.perf_counter() - started
    messages = monitor.broker.take()
    assert len(messages) == 10_000
    assert {m.queue for m in messages} == {REFRESH_QUEUE}
    assert len(db.notifications(principal)) == 10_000
    print(f"\ncontract-wide notification over 10,000 tokens applied in {elapsed:.2f}s")
    assert elapsed < 30
