"""What the host-slot tests read of a HostSlots' state; the workers never need to ask."""

from __future__ import annotations

from shared.indexing.host_slots import KEY_PREFIX, HostSlots


def slots_in_use(slots: HostSlots, host: str) -> int:
    """Slots of a host held in Redis, by every process (idle kept ones included)."""
    return int(slots.client.zcard(KEY_PREFIX + host.lower()))


def waiters_here(slots: HostSlots, host: str) -> int:
    """Requests of this process waiting for one of the host's slots."""
    with slots._lock:
        state = slots._hosts.get(KEY_PREFIX + host.lower())
        return len(state.waiters) if state else 0
