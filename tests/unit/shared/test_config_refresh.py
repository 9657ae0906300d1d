"""The refresh settings: REFRESH_COOLDOWN_S, REFRESH_CLIENT_LIMIT, TRUSTED_PROXIES."""

from __future__ import annotations

import ipaddress

import pytest

from shared.config import ConfigError, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.refresh_cooldown_s, settings.refresh_client_limit) == (600, 60)
    assert settings.trusted_proxy_networks() == ()


def test_trusted_proxies_are_addresses_and_cidrs() -> None:
    settings = Settings.from_env({"TRUSTED_PROXIES": " 10.0.0.1, 172.16.0.0/12,fd00::/8 ,"})
    assert settings.trusted_proxy_networks() == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("172.16.0.0/12"),
        ipaddress.ip_network("fd00::/8"),
    )


@pytest.mark.parametrize("entry", ["10.0.0.300", "proxy.internal", "10.0.0.0/33", "::g"])
def test_a_malformed_trusted_proxy_fails_naming_the_variable_and_entry(entry: str) -> None:
    with pytest.raises(ConfigError, match=f"TRUSTED_PROXIES has '{entry}'"):
        Settings.from_env({"TRUSTED_PROXIES": f"10.0.0.1,{entry}"})


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"REFRESH_COOLDOWN_S": "-1"}, "REFRESH_COOLDOWN_S"),
        ({"REFRESH_COOLDOWN_S": "10m"}, "REFRESH_COOLDOWN_S"),
        ({"REFRESH_CLIENT_LIMIT": "0"}, "REFRESH_CLIENT_LIMIT"),
    ],
)
def test_bad_refresh_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_no_cooldown_is_allowed() -> None:
    assert Settings.from_env({"REFRESH_COOLDOWN_S": "0"}).refresh_cooldown_s == 0
