"""The admin token `make run` makes for local use (deploy/run-local.sh, docs/dashboard.md)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from support.processes import ROOT

from shared.local_admin_token import ensure_local_admin_token


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_token_is_written_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / ".run" / "admin-token"
    previous = os.umask(0o022)
    try:
        token = ensure_local_admin_token(path)
    finally:
        os.umask(previous)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert path.read_text() == token + "\n"
    assert mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["admin-token"]  # no temporary left


def test_restarts_keep_the_token(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    first = ensure_local_admin_token(path)
    assert ensure_local_admin_token(path) == first


def test_a_token_file_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("kept-token\n")
    path.chmod(0o644)
    assert ensure_local_admin_token(path) == "kept-token"
    assert mode(path) == 0o600


def test_an_empty_token_file_gets_a_new_token(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("\n")
    token = ensure_local_admin_token(path)
    assert token
    assert path.read_text().strip() == token


def test_the_command_prints_the_token_alone(tmp_path: Path) -> None:
    """What deploy/run-local.sh captures with `$(...)`: one line, the same on every run."""
    path = tmp_path / "admin-token"
    command = [sys.executable, "-m", "shared.manage", "local-admin-token", str(path)]
    runs = [
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True) for _ in "12"
    ]
    assert runs[0].stdout == runs[1].stdout == path.read_text()
    assert runs[0].stdout.count("\n") == 1


def source_token_script(cwd: Path, env: dict[str, str]) -> list[str]:
    """deploy/local-admin-token.sh as run-local.sh sources it: ADMIN_API_TOKEN, as exported
    to the processes, and the banner's line."""
    script = ROOT / "deploy" / "local-admin-token.sh"
    shell = f'. "{script}"; bash -c \'echo "$ADMIN_API_TOKEN"\'; echo "$admin_token_line"'
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    run = subprocess.run(
        ["bash", "-c", shell], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return run.stdout.splitlines()


def test_make_run_generates_a_token_keeps_it_and_prints_it(tmp_path: Path) -> None:
    exported, line = source_token_script(tmp_path, {})
    token_file = tmp_path / ".run" / "admin-token"
    assert exported == token_file.read_text().strip()
    assert line == f"{exported}  (for local use, kept in .run/admin-token)"
    assert mode(token_file) == 0o600
    assert source_token_script(tmp_path, {})[0] == exported  # a restart


def test_make_run_uses_a_configured_token_and_does_not_print_it(tmp_path: Path) -> None:
    exported, line = source_token_script(tmp_path, {"ADMIN_API_TOKEN": "configured-token"})
    assert exported == "configured-token"
    assert line == "the ADMIN_API_TOKEN you configured"
    assert not (tmp_path / ".run").exists()


def test_make_run_prints_the_dashboard_url_and_the_token_line() -> None:
    script = (ROOT / "deploy" / "run-local.sh").read_text()
    assert ". deploy/local-admin-token.sh" in script
    assert "Dashboard:   http://localhost:${API_PORT}/metadata/v1/dashboard" in script
    assert "Admin token: ${admin_token_line}" in script
