"""Connections through a pooler in transaction mode (docs/replicas-and-poolers.md#poolers).

PgBouncer in transaction mode hands each transaction whichever server connection is free,
so nothing may outlive a transaction on the server side:

- prepared statements: psycopg 3 prepares a statement after it ran a few times on one
  connection, and the next transaction may land where it was never prepared (or where
  another client prepared the same name). `prepare_threshold=None` turns that off, as
  psycopg's documentation says for transaction poolers;
- settings: only `SET LOCAL` (or `set_config(..., true)`), never a plain `SET`;
- locks: only transaction-level advisory locks (`pg_advisory_xact_lock`), which is all the
  code takes;
- LISTEN: a notification goes to the server connection that listened, which the pooler
  gives to others between transactions. The stream listens only on a connection that keeps
  its session (`Settings.session_url`).
"""

from __future__ import annotations

from typing import Any


def connection_options(transaction_pooled: bool) -> dict[str, Any]:
    """psycopg connection keyword arguments for a connection through such a pooler."""
    return {"prepare_threshold": None} if transaction_pooled else {}
