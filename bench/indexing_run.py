"""One indexing run for the benchmarks that measure how the service treats its hosts
(`bench/host_capacity.py`, `bench/gateways.py`): fresh databases and a Redis DB of its own,
the simulated network in process, the Procfile's real `worker` and `beat` at the defaults
(with the given settings on top), until every token job has settled.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import create_engine, text  # noqa: E402
from support.processes import (  # noqa: E402
    Running,
    process_env,
    procfile_command,
    running,
    wait_until,
)
from webhook_latency import databases, redis_db  # noqa: E402 - bench/webhook_latency.py

from devnet import chain_db  # noqa: E402
from devnet.scenario import Scenario  # noqa: E402
from devnet.server import Devnet  # noqa: E402

SETTLED = text(
    "SELECT COUNT(*) FILTER (WHERE status = 'done') AS done, COUNT(*) AS total, "
    "COUNT(*) FILTER (WHERE status NOT IN ('done', 'pending', 'queued')) AS other "
    "FROM jobs WHERE token_id IS NOT NULL"
)
# Tokens stored in each second of the run, for its steadiest stretch.
PER_SECOND = text(
    "SELECT COUNT(*) AS n FROM tokens t JOIN jobs j ON j.token_id = t.id "
    "WHERE j.status = 'done' GROUP BY date_trunc('second', t.updated_at) "
    "ORDER BY date_trunc('second', t.updated_at)"
)

# Each token's stored name (default locale), to check what was stored against what was served.
STORED_NAMES = text(
    "SELECT t.token_number, m.name FROM tokens t JOIN metadata m ON m.token_id = t.id "
    "WHERE m.l10n_default IS NOT FALSE"
)


@dataclass(frozen=True)
class Indexing:
    """What a measurement around the run sees: the databases and the processes by name."""

    database_url: str
    chain_url: str
    processes: Mapping[str, Running]  # "worker", "beat"


@dataclass(frozen=True)
class IndexRun:
    elapsed_s: float  # from the first token done to the last job settled
    not_done: int  # token jobs that ended otherwise (failed, invalid): should be 0
    per_second: list[int]  # tokens stored in each second, in order
    stored_names: dict[int, str]  # token number -> the stored document's name


def index_scenario(
    scenario: Scenario,
    tokens: int,
    settings: Mapping[str, str],
    timeout_s: float,
    *,
    before_stop: Callable[[Devnet], None] = lambda _net: None,
    during: Callable[[Indexing], AbstractContextManager[object]] = lambda _run: nullcontext(),
) -> IndexRun:
    """Index `scenario` (`tokens` token jobs) with a worker and beat; `before_stop` sees the
    simulated network once every job has settled and the processes have stopped, before it
    stops; `during` is entered once the processes have started and left once every job has
    settled, while they still run (`bench/sizing.py` measures their CPU in it)."""
    with (
        databases() as (url, chain_url),
        redis_db() as redis_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        with chain_db.connect(chain_url, autocommit=True) as conn:
            chain_db.seed(conn, scenario)
        with Devnet(scenario) as net:
            env = process_env(
                {
                    "DATABASE_URL": url,
                    "REDIS_URL": redis_url,
                    "STACKS_API_DATABASE_URL": chain_url,
                    "STACKS_NODE_RPC_URL": net.node_url,
                    "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
                    "CELERY_BEAT_SCHEDULE": str(Path(tmp) / "beat-schedule"),
                    "LOG_LEVEL": "WARNING",
                    "WORKER_METRICS_PORT": "0",
                    **settings,
                }
            )
            engine = create_engine(url, connect_args={"application_name": "bench"})
            with (
                running("worker", procfile_command("worker"), env, Path(tmp)) as worker,
                running("beat", procfile_command("beat"), env, Path(tmp)) as beat,
                during(Indexing(url, chain_url, {"worker": worker, "beat": beat})),
            ):
                started = time.monotonic()
                first_done: list[float] = []
                other = [0]

                def settled() -> bool:
                    with engine.connect() as conn:
                        row = conn.execute(SETTLED).one()
                    if row.done and not first_done:
                        first_done.append(time.monotonic())
                    other[0] = row.other
                    return bool(row.total) and row.done + row.other == row.total == tokens

                wait_until(settled, timeout_s, "every token job to settle", interval=0.2)
                elapsed = time.monotonic() - (first_done[0] if first_done else started)
            with engine.connect() as conn:
                per_second = [row.n for row in conn.execute(PER_SECOND)]
                names = {int(row.token_number): row.name for row in conn.execute(STORED_NAMES)}
            engine.dispose()
            before_stop(net)
    return IndexRun(elapsed, other[0], per_second, names)
