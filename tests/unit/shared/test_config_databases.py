"""DATABASE_READ_URL, DATABASE_POOLER and DATABASE_SESSION_URL
(docs/replicas-and-poolers.md)."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings
from shared.pooling import connection_options

PRIMARY = "postgresql://postgres@db:5432/token_metadata"
REPLICA = "postgres://reader@replica:5432/token_metadata"
DIRECT = "postgresql://postgres@db-direct:5432/token_metadata"


def test_without_a_replica_every_read_goes_to_the_primary() -> None:
    settings = Settings.from_env({"DATABASE_URL": PRIMARY})
    assert settings.database_read_url is None
    assert settings.reads_url() == "postgresql+psycopg://postgres@db:5432/token_metadata"


def test_the_read_url_is_normalized_and_read_from_there() -> None:
    settings = Settings.from_env({"DATABASE_URL": PRIMARY, "DATABASE_READ_URL": REPLICA})
    assert settings.reads_url() == "postgresql+psycopg://reader@replica:5432/token_metadata"
    assert settings.database_url.startswith("postgresql+psycopg://postgres@db:")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_READ_URL", "mysql://replica/token_metadata"),
        ("DATABASE_READ_URL", "postgresql://replica:5432"),
        ("DATABASE_SESSION_URL", "redis://db:6379/0"),
        ("DATABASE_POOLER", "pgpool"),
    ],
)
def test_a_bad_database_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_a_transaction_pooler_turns_prepared_statements_off() -> None:
    assert not Settings.from_env({}).transaction_pooled
    settings = Settings.from_env({"DATABASE_POOLER": "pgbouncer"})
    assert settings.transaction_pooled
    assert connection_options(settings.transaction_pooled) == {"prepare_threshold": None}
    assert connection_options(False) == {}


def test_the_session_connection_is_the_database_unless_a_transaction_pooler_is_between() -> None:
    assert Settings.from_env({"DATABASE_URL": PRIMARY}).session_url() == (
        "postgresql+psycopg://postgres@db:5432/token_metadata"
    )
    pooled = {"DATABASE_URL": PRIMARY, "DATABASE_POOLER": "pgbouncer"}
    assert Settings.from_env(pooled).session_url() is None  # the stream polls
    with_direct = Settings.from_env({**pooled, "DATABASE_SESSION_URL": DIRECT})
    assert (
        with_direct.session_url() == "postgresql+psycopg://postgres@db-direct:5432/token_metadata"
    )
