"""STREAM_*: where the `stream` process listens, its heartbeat and its safety poll
(docs/change-feed.md#stream)."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings


def test_the_stream_listens_on_3001_with_a_15_s_heartbeat_by_default() -> None:
    settings = Settings.from_env({})
    assert (settings.stream_host, settings.stream_port) == ("0.0.0.0", 3001)
    assert (settings.stream_heartbeat_s, settings.stream_poll_s) == (15.0, 5.0)
    env = {"STREAM_HOST": "127.0.0.1", "STREAM_PORT": "4001", "STREAM_HEARTBEAT_S": "0.5"}
    settings = Settings.from_env(env)
    assert (settings.stream_host, settings.stream_port) == ("127.0.0.1", 4001)
    assert settings.stream_heartbeat_s == 0.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STREAM_PORT", "0"),
        ("STREAM_PORT", "70000"),
        ("STREAM_PORT", "web"),
        ("STREAM_HEARTBEAT_S", "0"),
        ("STREAM_POLL_S", "-1"),
    ],
)
def test_a_bad_stream_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
