"""The `server_version` string of the status route."""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


@cache
def server_version() -> str:
    """`stacks-token-metadata v<version> (<branch>:<commit>)`.

    Branch and commit come from GIT_BRANCH / GIT_COMMIT (set them in images built without
    `.git`), else from the checkout itself.
    """
    try:
        tag = version("stacks-token-metadata")
    except PackageNotFoundError:
        tag = "0.0.0"
    branch, commit = _git_head()
    branch = os.environ.get("GIT_BRANCH", branch)
    commit = os.environ.get("GIT_COMMIT", commit)[:7]
    return f"stacks-token-metadata v{tag} ({branch}:{commit})"


def _git_head() -> tuple[str, str]:
    git = REPOSITORY / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return "detached", head
        ref = head[len("ref: ") :]
        ref_file = git / ref
        if ref_file.exists():
            return ref.rsplit("/", 1)[-1], ref_file.read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return ref.rsplit("/", 1)[-1], line.split(" ", 1)[0]
    except OSError:
        pass
    return "unknown", "unknown"
