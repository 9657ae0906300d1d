"""The admin token `make run` generates for local use when none is configured
(docs/dashboard.md#make-run): kept in a file readable by its owner only, so restarts keep it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_BYTES = 32
FILE_MODE = 0o600


def ensure_local_admin_token(path: Path) -> str:
    """The token stored at `path`, or a new one written there first; the file ends 0600."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            path.chmod(FILE_MODE)
            return token
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 (whatever the umask), then renamed: never readable by others, never half written.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    partial.chmod(FILE_MODE)
    partial.replace(path)
    return token
