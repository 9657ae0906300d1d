"""Test doubles for the unit tests of the Redis-only logic (tests/unit/shared/redis_logic)."""

from __future__ import annotations

import time
from typing import Any

import pytest


class Unreachable:
    """Stands for Redis (a client or a script) or the database where a test expects no call."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"was asked: {name}")

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("a script ran")


class CountedScript:
    """Wraps a HostSlots' acquire script to note when it runs (monotonic time)."""

    def __init__(self, slots: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at: list[float] = []
        self._script = slots._acquire
        monkeypatch.setattr(slots, "_acquire", self)

    @property
    def calls(self) -> int:
        return len(self.at)

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.at.append(time.monotonic())
        return self._script(*args, **kwargs)
