"""CHANGES_RETENTION_DAYS: how long the change log keeps its entries (docs/change-feed.md)."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings


def test_entries_are_kept_a_week_by_default() -> None:
    assert Settings.from_env({}).changes_retention_days == 7
    assert Settings.from_env({"CHANGES_RETENTION_DAYS": "30"}).changes_retention_days == 30


@pytest.mark.parametrize("value", ["0", "-1", "a week"])
def test_a_retention_below_a_day_or_malformed_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="CHANGES_RETENTION_DAYS"):
        Settings.from_env({"CHANGES_RETENTION_DAYS": value})
