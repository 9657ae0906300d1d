"""Worker lifecycle hooks: refuse to start without a chain to read."""

from __future__ import annotations

import sys
from typing import Any

from celery.signals import worker_init

from shared.config import Settings


@worker_init.connect
def check_chain_settings(sender: Any = None, **_kwargs: Any) -> None:
    settings: Settings = sender.app.conf.token_metadata_settings
    for variable, value in (
        ("STACKS_NODE_RPC_URL", settings.stacks_node_rpc_url),
        ("STACKS_API_DATABASE_URL", settings.stacks_api_database_url),
    ):
        if not value:
            print(
                f"configuration error: {variable} is not set "
                "(`make run` starts a simulated network when no node is configured)",
                file=sys.stderr,
            )
            raise SystemExit(2)
