"""Cold-start ownership of one collection: how long the chain monitor's step takes to read a
10,000-token collection's owners from the Stacks API database's history and store them
(docs/chain-monitor.md#ownership-import). Loopback Postgres only, fresh databases, dropped
after.

    .venv/bin/python bench/ownership_import.py                  # 10,000 tokens, 5 runs
    .venv/bin/python bench/ownership_import.py --tokens 50000 --other-events 300000

The collection's history: every token minted, every second token transferred, every seventh
transferred again, every 97th burned; `--other-events` adds other collections' events to
the same table, so that the read has to pick its collection's out. Each run undoes the
import and times a whole monitor step (`advance`) doing it again; the median is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402 - after the path set-up above
from alembic.config import Config  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from devnet import chain_db  # noqa: E402
from devnet.builders import nft_collection  # noqa: E402
from devnet.scenario import Scenario  # noqa: E402
from shared.chain.monitor import MonitorSettings, advance  # noqa: E402
from shared.db import session_scope  # noqa: E402
from shared.indexing.contracts import load_contract, store_contract_tokens  # noqa: E402
from shared.jobs.transitions import ClaimedJob  # noqa: E402
from shared.models import Job, NftOwnership, SmartContract  # noqa: E402
from shared.stacks.api_db import StacksApiDatabase  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--other-events", type=int, default=0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    tag = uuid.uuid4().hex[:8]
    ours, sba = f"tm_bench_owners_{tag}", f"tm_bench_owners_sba_{tag}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{ours}"'))
        conn.execute(text(f'CREATE DATABASE "{sba}"'))
    try:
        run(f"{SERVER}/{ours}", f"{SERVER}/{sba}", args)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{ours}" WITH (FORCE)'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{sba}" WITH (FORCE)'))
        admin.dispose()


def run(ours_url: str, sba_url: str, args: argparse.Namespace) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", ours_url)
    command.upgrade(config, "head")
    n = args.tokens
    transfers = tuple(range(1, n + 1, 2)) + tuple(range(1, n + 1, 7))
    collection = nft_collection("big", n, 2, transfers=transfers, burns=tuple(range(3, n + 1, 97)))
    others = [nft_collection(f"other{i}", args.other_events // 50, 2) for i in range(50)]
    scenario = Scenario.build(
        [collection, *(others if args.other_events else [])], chain_tip_height=20
    )
    with chain_db.connect(sba_url.replace("+psycopg", "")) as conn:
        chain_db.create_schema(conn)
        chain_db.seed(conn, scenario)
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
        events = conn.execute("SELECT count(*) FROM nft_events").fetchone()[0]
    engine, sba_engine = create_engine(ours_url), create_engine(sba_url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    chain, params = StacksApiDatabase(sba_engine), MonitorSettings()
    with session_scope(sessions) as session:  # the history import: the contract is stored
        advance(session, chain, params)
    with session_scope(sessions) as session:  # its contract job: tokens stored, import queued
        principal = collection.contract_id
        contract_id = session.scalars(
            select(SmartContract.id).where(SmartContract.principal == principal)
        ).one()
        job_id = session.scalars(select(Job.id).where(Job.smart_contract_id == contract_id)).one()
        contract = load_contract(session, contract_id)
        assert contract is not None
        store_contract_tokens(session, contract, n, ClaimedJob(job_id, None, contract_id, 0))
    timings = []
    for _ in range(args.runs):
        with session_scope(sessions) as session:  # undo the previous run's import
            session.execute(text("DELETE FROM nft_ownership"))
            session.execute(text("UPDATE chain_ownership_imports SET block_height = NULL"))
        started = time.perf_counter()
        with session_scope(sessions) as session:
            advance(session, chain, params)
        timings.append(time.perf_counter() - started)
        with session_scope(sessions) as session:
            stored = session.scalar(select(func.count()).select_from(NftOwnership))
        if stored != n:
            raise SystemExit(f"the import stored {stored} owners, not {n}")
    engine.dispose()
    sba_engine.dispose()
    print(
        f"cold-start ownership of {n:,} tokens ({events:,} NFT events in the Stacks API "
        f"database): median {statistics.median(timings) * 1000:.0f} ms of {args.runs} monitor "
        f"steps (min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f})"
    )


if __name__ == "__main__":
    main()
