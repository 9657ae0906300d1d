from __future__ import annotations

import pytest

from shared.config import DEFAULT_DATABASE_URL, ConfigError, Settings


def test_defaults_match_the_reference() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.api_port == 3000
    assert settings.job_queue_max_retries == 10
    assert settings.metadata_max_payload_byte_size == 1_000_000
    assert settings.public_gateway_ipfs_replaced[0] == "ipfs.io"
    assert settings.metadata_fetch_allow_private_networks is False
    assert (settings.stacks_api_database_url, settings.stacks_node_rpc_url) == (None, None)


def test_plain_postgresql_urls_are_accepted() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@db:5432/tm",
            "STACKS_API_DATABASE_URL": "postgres://u@sba/stacks",
        }
    )
    assert settings.database_url == "postgresql+psycopg://u@db:5432/tm"
    assert settings.stacks_api_database_url == "postgresql+psycopg://u@sba/stacks"


def test_reference_pg_variables_build_the_database_url() -> None:
    settings = Settings.from_env(
        {"PGHOST": "db", "PGPORT": "6543", "PGUSER": "tm", "PGPASSWORD": "p@ss", "PGDATABASE": "x"}
    )
    assert settings.database_url == "postgresql+psycopg://tm:p%40ss@db:6543/x"


def test_reference_node_host_and_port_build_the_rpc_url() -> None:
    settings = Settings.from_env({"STACKS_NODE_RPC_HOST": "node", "STACKS_NODE_RPC_PORT": "20443"})
    assert settings.stacks_node_rpc_url == "http://node:20443"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"API_PORT": "http"}, "API_PORT"),
        ({"JOB_QUEUE_MAX_RETRIES": "ten"}, "JOB_QUEUE_MAX_RETRIES"),
        (
            {"METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "maybe"},
            "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS",
        ),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://host"}, "DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"NETWORK": "devnet"}, "NETWORK"),
        ({"STACKS_NODE_RPC_HOST": "node"}, "STACKS_NODE_RPC_PORT"),
        ({"STACKS_NODE_RPC_URL": "node:20443"}, "STACKS_NODE_RPC_URL"),
        ({"API_WORKERS": "0"}, "API_WORKERS"),
        ({"API_THREADS": "many"}, "API_THREADS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_malformed_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_boolean_and_list_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "METADATA_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
            "PUBLIC_GATEWAY_IPFS_REPLACED": "a.example, b.example",
            "CHAIN_POLL_INTERVAL_S": "0.5",
        }
    )
    assert settings.metadata_fetch_allow_private_networks is True
    assert settings.public_gateway_ipfs_replaced == ("a.example", "b.example")
    assert settings.chain_poll_interval_s == 0.5


def test_gateway_settings_take_a_comma_separated_list() -> None:
    settings = Settings.from_env(
        {
            "PUBLIC_GATEWAY_IPFS": "https://a.example, https://b.example/base",
            "PUBLIC_GATEWAY_ARWEAVE": "https://arweave.net",
        }
    )
    assert settings.public_gateway_ipfs == "https://a.example, https://b.example/base"


@pytest.mark.parametrize(
    "value",
    [
        "https://a.example,ftp://b.example",
        "https://a.example,not a url",
        "https://a.example,https://",
        " , ",
        "https://a.example,https://A.example:8443",
    ],
)
def test_a_bad_gateway_in_the_list_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match="PUBLIC_GATEWAY_IPFS"):
        Settings.from_env({"PUBLIC_GATEWAY_IPFS": value})


def test_ipfs_content_is_verified_unless_switched_off() -> None:
    assert Settings.from_env({}).ipfs_verify_content is True
    assert Settings.from_env({"IPFS_VERIFY_CONTENT": "false"}).ipfs_verify_content is False
