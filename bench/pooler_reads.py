"""What turning prepared statements off costs the hottest read, and what PgBouncer in
transaction mode adds (docs/replicas-and-poolers.md#poolers). Loopback only; a fresh
database of its own, dropped after.

    .venv/bin/python bench/pooler_reads.py                 # 5000 lookups per mode
    .venv/bin/python bench/pooler_reads.py --lookups 20000

It migrates a fresh database, stores one collection of 200 tokens with metadata, then runs
the token routes' statement (`shared.reads.tokens.LOOKUP_SQL`, what GET /nft/... reads) for
random tokens through the API's own `api.db.RawReads`, one connection, in three modes taken
in turns (three rounds, the best round of each kept): straight to Postgres with psycopg's
prepared statements (the default), straight without them (`DATABASE_POOLER=pgbouncer`'s
setting), and through the system's PgBouncer in transaction mode without them.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from alembic import command  # noqa: E402 - after the path set-up above
from alembic.config import Config  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402
from support.builders import add_contract, add_metadata, add_token  # noqa: E402
from support.pgbouncer import pgbouncer  # noqa: E402

from api.db import RawReads  # noqa: E402
from shared.reads.tokens import LOOKUP_SQL  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
TOKENS = 200


def seed(url: str) -> str:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    engine = create_engine(url)
    with sessionmaker(bind=engine).begin() as s:
        contract = add_contract(s)
        for number in range(1, TOKENS + 1):
            add_metadata(s, add_token(s, contract, number), name=f"Token #{number}")
        principal = contract.principal
    engine.dispose()
    return principal


def lookups(url: str, principal: str, count: int, pooled: bool) -> float:
    """Microseconds per lookup, wall clock, on one connection."""
    engine = create_engine(url)
    reads = RawReads(engine, transaction_pooled=pooled)
    numbers = [random.randint(1, TOKENS) for _ in range(count)]
    for number in numbers[:50]:  # connect, and let psycopg prepare
        reads.one(LOOKUP_SQL, {"principal": principal, "token_number": number, "locale": None})
    started = time.perf_counter()
    for number in numbers:
        row = reads.one(
            LOOKUP_SQL, {"principal": principal, "token_number": number, "locale": None}
        )
        assert row is not None
        assert row.token_id is not None
    elapsed = time.perf_counter() - started
    reads.close()
    engine.dispose()
    return elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookups", type=int, default=5000)
    args = parser.parse_args()
    name = f"tm_bench_pooler_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        principal = seed(f"{SERVER}/{name}")
        with pgbouncer(pool_size=4) as pooler:
            modes = {
                "direct, prepared (default)": (f"{SERVER}/{name}", False),
                "direct, not prepared": (f"{SERVER}/{name}", True),
                "pgbouncer (transaction), not prepared": (pooler.url(name), True),
            }
            best: dict[str, float] = {}
            for _ in range(3):
                for mode, (url, pooled) in modes.items():
                    us = lookups(url, principal, args.lookups, pooled)
                    best[mode] = min(best.get(mode, us), us)
        print(f"{args.lookups} token lookups per mode, best of 3 rounds, one connection:")
        for mode, us in best.items():
            print(f"  {mode:40s} {us:7.0f} us per lookup")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
