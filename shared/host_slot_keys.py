"""Where the per-host fetch slots and adaptive limits live in Redis (docs/host-slots.md):
written by `shared.indexing.host_slots` and `host_limits`, read by the admin routes
(`shared.reads.host_slots`, `shared.reads.hosts`)."""

from __future__ import annotations

# A sorted set per host: one member per slot held, scored by its expiry (Redis server time).
KEY_PREFIX = "token-metadata:host-slots:"
# A sorted set per host: one member per process waiting for a slot, scored by its expiry.
WAITERS_PREFIX = "token-metadata:host-waiters:"
# A hash per host: its adaptive concurrency limit and what moves it (docs/host-slots.md#adaptive).
LIMIT_PREFIX = "token-metadata:host-limit:"
