"""Fixtures for unit tests of the logic that only talks to Redis, on fakeredis.

fakeredis stands in for Redis here only: these tests check the logic (Lua scripts included,
run by fakeredis through lupa); the same services run against the real Redis in
tests/integration/jobs and tests/integration/indexing. Time stands still unless a test moves
it: `clock` serves both the wall time (which fakeredis answers TIME with and expires keys by)
and the monotonic time the services measure waits with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis


class Clock:
    """Wall and monotonic time, both still until `advance` moves them on together."""

    def __init__(self, wall: float = 1_700_000_000.0, monotonic: float = 1_000.0) -> None:
        self.wall = wall
        self.mono = monotonic

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Replaces time.time (fakeredis and the services read it through the module) and
    time.monotonic for the test."""
    clock = Clock()
    monkeypatch.setattr(time, "time", clock.time)
    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    return clock


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """An empty Redis of this test's own (FakeRedis instances share a server unless given
    one)."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    yield client
    client.close()
