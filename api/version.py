"""The `server_version` string of the status route."""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def server_version() -> str:
    """`stacks-token-metadata v<version> (<branch>:<commit>)`; branch and commit from the env."""
    try:
        tag = version("stacks-token-metadata")
    except PackageNotFoundError:
        tag = "0.0.0"
    branch = os.environ.get("GIT_BRANCH", "main")
    commit = os.environ.get("GIT_COMMIT", "unknown")[:7]
    return f"stacks-token-metadata v{tag} ({branch}:{commit})"
