"""WEBHOOK_* settings (docs/webhooks.md#settings)."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings


def test_webhook_defaults_and_overrides() -> None:
    settings = Settings.from_env({})
    assert settings.webhook_disable_after_h == 24
    assert settings.webhook_timeout_s == 10
    assert settings.webhook_max_backoff_s == 86_400
    assert settings.webhook_backoff_base_s == 10
    custom = Settings.from_env({"WEBHOOK_DISABLE_AFTER_H": "2", "WEBHOOK_TIMEOUT_S": "2.5"})
    assert custom.webhook_disable_after_h == 2
    assert custom.webhook_timeout_s == 2.5


@pytest.mark.parametrize(
    "name",
    [
        "WEBHOOK_DISABLE_AFTER_H",
        "WEBHOOK_TIMEOUT_S",
        "WEBHOOK_MAX_BACKOFF_S",
        "WEBHOOK_BACKOFF_BASE_S",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1", "a day"])
def test_a_non_positive_or_malformed_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
