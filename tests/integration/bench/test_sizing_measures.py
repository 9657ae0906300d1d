"""bench/sizing.py's Postgres measure (docs/scaling.md#method): a backend's CPU is found by the
database in its process title, named by its client's application_name, and counted from its
first reading, or from zero when it started during the measurement."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

import bench.sizing as sizing

BURN = "SELECT count(*) FROM generate_series(1, 3000000)"  # about 0.2-0.5 s of a backend's CPU


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def backend_cpu(conn: psycopg.Connection[tuple[int]]) -> float:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    reading = sizing.backend_cpu_s(row[0])
    assert reading is not None
    return reading[0]


def test_a_backends_cpu_is_counted_for_its_database_and_client(
    stacks_api_database_url: str,
) -> None:
    url = plain(stacks_api_database_url)
    database = make_url(url).database
    assert database
    admin_url = plain(make_url(url).set(database="postgres").render_as_string(False))
    with (
        psycopg.connect(admin_url, autocommit=True, application_name=sizing.OWN_QUERIES) as admin,
        psycopg.connect(url, autocommit=True, application_name="tm-worker") as before,
    ):
        before.execute(BURN)  # spent before the measurement: not counted
        cpu = sizing.BackendCpu((database,), sizing.postmaster_pid(admin), admin)
        cpu.sample()
        baseline = backend_cpu(before)
        with psycopg.connect(url, autocommit=True, application_name="tm-chain-reader") as later:
            later.execute(BURN)
            cpu.sample()
            reader_total = backend_cpu(later)
        before.execute(BURN)
        cpu.sample()
        worker_total = backend_cpu(before)
    spent = cpu.by_client()
    # Only the two backends of this database; the admin connection (database postgres) is not.
    assert set(spent) == {(database, "tm-worker"), (database, "tm-chain-reader")}
    assert baseline > 0.05  # the first burn happened, and is left out:
    assert spent[database, "tm-worker"] == pytest.approx(worker_total - baseline, abs=0.02)
    # Started during the measurement: counted from zero, its connection's start included.
    assert spent[database, "tm-chain-reader"] == pytest.approx(reader_total, abs=0.02)
    assert reader_total > 0.05
    assert sum(b.ended for b in cpu.backends.values()) == 1  # `later` closed before the last
