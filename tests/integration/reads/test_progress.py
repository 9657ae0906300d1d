"""The backfill progress figures and their rendering, against a seeded database."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.builders import add_contract, add_token
from support.processes import ROOT, process_env

from shared.config import Settings
from shared.db import session_scope
from shared.models import JobStatus, Sip
from shared.progress import render
from shared.reads.progress import index_progress


@pytest.fixture
def seeded(sessions) -> str:
    with session_scope(sessions) as s:
        nft = add_contract(s, sip=Sip.SIP_009)
        statuses = [JobStatus.DONE] * 6 + [JobStatus.PENDING] * 3 + [JobStatus.INVALID]
        for number, status in enumerate(statuses, start=1):
            add_token(s, nft, number, job_status=status)
        ft = add_contract(s, sip=Sip.SIP_010, job_status=JobStatus.PENDING)
        add_token(s, ft, 1, job_status=JobStatus.FAILED)
        return nft.principal


def test_counts_jobs_by_kind_and_status(sessions, seeded) -> None:
    with session_scope(sessions) as s:
        progress = index_progress(s)
    assert progress.counts["nft"] == {"done": 6, "pending": 3, "invalid": 1}
    assert progress.counts["ft"] == {"failed": 1}
    assert progress.counts["sip-009"] == {"done": 1}
    assert progress.counts["sip-010"] == {"pending": 1}
    assert (progress.total(), progress.finished()) == (11, 8)
    assert progress.finished_recently == 0  # the builders leave updated_at empty


def test_one_contract_can_be_followed(sessions, seeded) -> None:
    with session_scope(sessions) as s:
        progress = index_progress(s, contract=seeded)
    assert set(progress.counts) == {"nft", "sip-009"}


def test_render_shows_the_bar_and_the_estimate(sessions, seeded) -> None:
    with session_scope(sessions) as s:
        text = render(index_progress(s))
    assert "8/11" in text
    assert "72.7%" in text
    assert "time left: unknown" in text


def test_the_command_prints_the_figures(settings: Settings, seeded) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.progress"],
        cwd=ROOT,
        env=process_env({"DATABASE_URL": settings.database_url}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "nft" in result.stdout
    assert "8/11" in result.stdout
