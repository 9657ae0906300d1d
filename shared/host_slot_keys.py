"""Where the per-host fetch slots live in Redis (docs/host-slots.md): written by
`shared.indexing.host_slots`, read by the dashboard (`shared.reads.host_slots`)."""

from __future__ import annotations

# A sorted set per host: one member per slot held, scored by its expiry (Redis server time).
KEY_PREFIX = "token-metadata:host-slots:"
# A sorted set per host: one member per process waiting for a slot, scored by its expiry.
WAITERS_PREFIX = "token-metadata:host-waiters:"
