"""No work is lost: real worker and beat processes survive kill -9, a Redis flush, a
Postgres restart and SIGTERM; two workers never process a token twice; a new contract is not
stuck behind thousands of token jobs. See docs/job-engine.md.

The restarts are of the servers the run uses (tests/support/restarts.py): the embedded ones
it started, else the machine's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from conftest import RUN_LOCK_KEY
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import sessionmaker
from support.builders import add_contract
from support.processes import Running, process_env, procfile_command, running, wait_until
from support.restarts import restart_postgres, restart_redis

from devnet import chain_db
from devnet.scenario import Scenario, nft_collection
from devnet.server import Devnet
from shared.config import Settings
from shared.db import session_scope
from shared.embedded.servers import Servers
from shared.jobs.recovery import BROKER_MARKER_KEY
from shared.jobs.transitions import mark_queued
from shared.models import Job, JobStatus
from shared.queues import CONTRACTS_QUEUE, PROCESS_CONTRACT_TASK
from workers.celery_app import create_celery_app
from workers.runtime import JobEnqueuer

pytestmark = pytest.mark.e2e
TOKENS = 2000
DEADLINE_S = 240

COUNTS = text(
    "SELECT j.status::text AS status, COUNT(*) AS n FROM jobs j WHERE j.token_id IS NOT NULL "
    "GROUP BY j.status"
)


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    database_url: str
    devnet: Devnet
    processes: ExitStack

    def start(self, name: str) -> Running:
        command = procfile_command(name.rstrip("0123456789"))
        return self.processes.enter_context(running(name, command, self.env, self.tmp))

    def counts(self) -> dict[str, int]:
        engine = create_engine(self.database_url, pool_size=1)
        try:
            with engine.connect() as conn:
                return {row.status: row.n for row in conn.execute(COUNTS)}
        except Exception:  # Postgres restarting
            return {}
        finally:
            engine.dispose()

    def done(self) -> int:
        return self.counts().get("done", 0)

    def wait_all_done(self, what: str) -> float:
        started = time.monotonic()
        try:
            wait_until(lambda: self.done() == TOKENS, DEADLINE_S, what, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None
        return time.monotonic() - started

    def diagnosis(self) -> str:
        """What a timeout leaves to look at: the jobs by status and each process's last lines."""
        lines = [f"token jobs by status: {self.counts()}"]
        for log in sorted(self.tmp.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-25:]
            lines += [f"--- {log.name} (last {len(tail)} lines)", *tail]
        return "\n".join(lines)

    def metadata_rows_per_token(self) -> set[int]:
        engine = create_engine(self.database_url, pool_size=1)
        with engine.connect() as conn:
            counts = conn.execute(
                text(
                    "SELECT COUNT(m.id) FROM tokens t LEFT JOIN metadata m ON m.token_id = t.id "
                    "GROUP BY t.id"
                )
            ).scalars()
            result = set(counts)
        engine.dispose()
        return result


@pytest.fixture
def stack(
    tmp_path: Path, database_url: str, stacks_api_database_url: str, redis_url: str
) -> Iterator[Callable[..., Stack]]:
    with ExitStack() as cleanup:

        def build(latency_ms: int = 5, tokens: int = TOKENS, **env: str) -> Stack:
            scenario = Scenario.build(
                [nft_collection("fault-monkeys", tokens, 2)],
                chain_tip_height=3,
                metadata_latency_ms=latency_ms,
            )
            with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
                chain_db.create_schema(conn)
                chain_db.seed(conn, scenario)
            net = cleanup.enter_context(Devnet(scenario))
            settings = process_env(
                {
                    "DATABASE_URL": database_url,
                    "REDIS_URL": redis_url,
                    "STACKS_API_DATABASE_URL": stacks_api_database_url,
                    "STACKS_NODE_RPC_URL": net.node_url,
                    "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
                    "CHAIN_POLL_INTERVAL_S": "1",
                    "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
                    "WORKER_CONCURRENCY": "8",
                    **env,
                }
            )
            processes = cleanup.enter_context(ExitStack())
            return Stack(tmp_path, settings, database_url, net, processes)

        yield build


def test_killing_a_worker_mid_run_loses_no_token(stack) -> None:
    s = stack()
    s.start("beat")
    doomed = s.start("worker1")
    wait_until(lambda: s.done() >= TOKENS // 5, DEADLINE_S, "a fifth of the tokens")
    os.killpg(doomed.process.pid, signal.SIGKILL)
    killed_at_done = s.done()
    s.start("worker2")
    recovery = s.wait_all_done("every token after kill -9")
    print(f"\nkill -9 at {killed_at_done} done: all {TOKENS} done {recovery:.1f}s later")
    assert s.metadata_rows_per_token() == {1}


# A consumer that takes one message from a queue, as a worker does (acks_late: it stays
# unacknowledged in Redis), and dies before it could claim the job.
TAKE_ONE_MESSAGE_AND_DIE = """
import os, sys
from shared.config import Settings
from workers.celery_app import create_celery_app
app = create_celery_app(Settings.from_env(os.environ))
channel = app.connection_for_read().default_channel
while message := channel.basic_get(queue=sys.argv[1], no_ack=False):
    print(message.headers["task"], flush=True)
os._exit(0)
"""


def test_a_message_taken_by_a_worker_that_died_before_claiming_it_runs_elsewhere(
    stack, redis_url: str
) -> None:
    """The job was queued, its message received and never acknowledged: it must not wait for
    the 10-minute rule. A 5 s job timeout makes the visibility timeout 65 s."""
    s = stack(tokens=10, JOB_QUEUE_TIMEOUT_MS="5000")
    client = redis.Redis.from_url(redis_url)
    client.set(BROKER_MARKER_KEY, "set")  # not a fresh Redis: nothing is re-sent at once
    s.start("beat")
    # Beat's tasks (the chain monitor, the dispatcher) run; nothing takes a contract job yet.
    all_queues = "--queues chain,contracts,tokens,refresh,images,webhooks"
    chain_only = procfile_command("worker").replace(all_queues, "--queues chain")
    assert chain_only != procfile_command("worker")
    s.processes.enter_context(running("chain-worker", chain_only, s.env, s.tmp))
    wait_until(lambda: client.llen(CONTRACTS_QUEUE) > 0, 60, "the contract job's message")
    taken = subprocess.run(
        [sys.executable, "-c", TAKE_ONE_MESSAGE_AND_DIE, CONTRACTS_QUEUE],
        env=s.env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert taken.stdout.split() == [PROCESS_CONTRACT_TASK]
    assert client.llen(CONTRACTS_QUEUE) == 0
    s.start("worker")
    started = time.monotonic()
    wait_until(lambda: s.done() == 10, 150, "the dead consumer's contract and its tokens")
    print(f"\nunclaimed message of a dead consumer run {time.monotonic() - started:.1f}s later")
    assert s.metadata_rows_per_token() == {1}


def test_flushing_redis_mid_run_loses_no_token(stack, redis_url: str) -> None:
    s = stack()
    s.start("beat")
    s.start("worker")
    wait_until(lambda: s.done() >= TOKENS // 5, DEADLINE_S, "a fifth of the tokens")
    redis.Redis.from_url(redis_url).flushdb()
    recovery = s.wait_all_done("every token after FLUSHDB")
    print(f"\nRedis flushed mid-run: all {TOKENS} done {recovery:.1f}s later")
    assert s.metadata_rows_per_token() == {1}


def test_restarting_redis_mid_run_loses_no_token(stack, redis_url: str, servers: Servers) -> None:
    s = stack()
    s.start("beat")
    s.start("worker")
    wait_until(lambda: s.done() >= TOKENS // 5, DEADLINE_S, "a fifth of the tokens")
    restart_redis(servers)
    redis.Redis.from_url(redis_url).set(RUN_LOCK_KEY, "restarted", ex=3600)  # lost with the rest
    recovery = s.wait_all_done("every token after a Redis restart")
    print(f"\nRedis restarted mid-run: all {TOKENS} done {recovery:.1f}s later")
    assert s.metadata_rows_per_token() == {1}


def test_sigterm_lets_running_jobs_finish_and_strands_nothing(stack) -> None:
    s = stack(latency_ms=20)
    s.start("beat")
    first = s.start("worker1")
    wait_until(lambda: s.done() >= 100, DEADLINE_S, "the first tokens")
    first.stop()  # SIGTERM: warm shutdown
    assert first.process.returncode == 0
    s.start("worker2")
    recovery = s.wait_all_done("every token after a warm shutdown")
    print(f"\nSIGTERM mid-run: all {TOKENS} done {recovery:.1f}s after the restart")
    assert s.metadata_rows_per_token() == {1}


def test_two_workers_never_process_a_token_twice(stack) -> None:
    s = stack()
    s.start("beat")
    s.start("worker1")
    s.start("worker2")
    s.wait_all_done("every token with two workers")
    fetched = {
        path: n
        for path, n in s.devnet.metadata_host.request_counts().items()
        if path.endswith(".json")
    }
    assert len(fetched) == TOKENS
    assert set(fetched.values()) == {1}


def test_two_workers_together_keep_a_host_to_its_cap(stack) -> None:
    """Tokens wait in their worker for a slot of the one metadata host; the cap (4 here)
    holds across both workers, and is used."""
    s = stack(METADATA_HOST_CONCURRENCY_LIMIT="4")
    s.start("beat")
    s.start("worker1")
    s.start("worker2")
    s.wait_all_done("every token with two workers sharing a host")
    peak = s.devnet.metadata_host.peak_in_flight()
    print(f"\npeak metadata requests in flight: {peak} (cap 4)")
    assert 2 <= peak <= 4


def test_restarting_postgres_mid_run_loses_no_token(stack, servers: Servers) -> None:
    s = stack(latency_ms=10)
    s.start("beat")
    s.start("worker")
    wait_until(lambda: s.done() >= TOKENS // 5, DEADLINE_S, "a fifth of the tokens")
    restart_postgres(servers)
    recovery = s.wait_all_done("every token after a Postgres restart")
    print(f"\nPostgres restarted mid-run: all {TOKENS} done {recovery:.1f}s later")
    assert s.metadata_rows_per_token() == {1}


def test_a_new_contract_starts_within_seconds_behind_5000_token_jobs(
    stack, database_url: str
) -> None:
    s = stack(latency_ms=100, tokens=5000)
    late = nft_collection("late-monkeys", 10, 2)
    s.devnet.scenario = s.devnet.scenario.with_contracts(late)  # the node knows it; we do not
    s.start("beat")
    s.start("worker")
    wait_until(lambda: s.done() >= 200, DEADLINE_S, "the token backlog to be under way")
    assert sum(s.counts().values()) == 5000
    engine = create_engine(database_url, pool_size=1)
    sessions = sessionmaker(engine)
    with session_scope(sessions) as session:
        contract = add_contract(session, late.contract_id, job_status=JobStatus.PENDING)
        job_id = session.scalars(select(Job.id).where(Job.smart_contract_id == contract.id)).one()
        messages = mark_queued(session, [job_id])
    app = create_celery_app(Settings.from_env(s.env))
    enqueued = time.monotonic()
    JobEnqueuer(app)(messages)
    app.close()

    def contract_done() -> bool:
        with session_scope(sessions) as session:
            return session.get(Job, job_id).status == JobStatus.DONE  # type: ignore[union-attr]

    wait_until(contract_done, 30, "the new contract's job")
    waited = time.monotonic() - enqueued
    backlog = 5000 - s.done()
    engine.dispose()
    print(f"\nnew contract done {waited:.2f}s after it was enqueued behind {backlog} token jobs")
    assert backlog >= 1000  # it really was behind thousands of token jobs
    assert waited < 5
