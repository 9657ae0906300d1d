"""CHAIN_DATABASE_SWAP_POLICY: what the chain monitor does when the Stacks API database has no
row for the block it stopped at (docs/chain-monitor.md#database-swap)."""

from __future__ import annotations

import pytest

from shared.chain.monitor import MonitorSettings
from shared.chain.swap import SwapPolicy
from shared.config import ConfigError, Settings


def test_the_monitor_waits_and_resumes_by_default() -> None:
    settings = Settings.from_env({})
    assert settings.chain_database_swap_policy == "resume"
    assert MonitorSettings.from_settings(settings).swap_policy is SwapPolicy.RESUME


def test_reimport_is_chosen_by_the_setting() -> None:
    settings = Settings.from_env({"CHAIN_DATABASE_SWAP_POLICY": "reimport"})
    assert MonitorSettings.from_settings(settings).swap_policy is SwapPolicy.REIMPORT


@pytest.mark.parametrize("value", ["re-import", "wait", "RESUME"])
def test_another_policy_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="CHAIN_DATABASE_SWAP_POLICY must be resume or reimport"):
        Settings.from_env({"CHAIN_DATABASE_SWAP_POLICY": value})
