"""Hosts with metadata fetches in flight, from the per-host slots in Redis
(docs/host-slots.md): slots held and processes waiting for one, the busiest first."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from shared.host_slot_keys import KEY_PREFIX, WAITERS_PREFIX

TOP = 20
# Keys looked at, at most: a dashboard request must stay cheap when thousands of hosts are busy.
MAX_HOSTS_SCANNED = 2000


@dataclass(frozen=True)
class BusyHost:
    host: str
    slots_held: int
    processes_waiting: int


def read_busy_hosts(
    client: redis.Redis, top: int = TOP, max_scanned: int = MAX_HOSTS_SCANNED
) -> list[BusyHost]:
    """Slots not yet expired (Redis's own clock) per host. Raises RedisError."""
    seconds, micros = client.time()
    now = seconds + micros / 1_000_000
    hosts: list[str] = []
    for key in client.scan_iter(match=KEY_PREFIX + "*", count=500):
        hosts.append(key.decode()[len(KEY_PREFIX) :] if isinstance(key, bytes) else key)
        if len(hosts) >= max_scanned:
            break
    with client.pipeline(transaction=False) as pipe:
        for host in hosts:
            pipe.zcount(KEY_PREFIX + host, now, "+inf")
            pipe.zcount(WAITERS_PREFIX + host, now, "+inf")
        counts = iter(pipe.execute())
    found = [BusyHost(host, int(next(counts)), int(next(counts))) for host in hosts]
    busy = [host for host in found if host.slots_held or host.processes_waiting]
    busy.sort(key=lambda h: (-h.slots_held, -h.processes_waiting, h.host))
    return busy[:top]
