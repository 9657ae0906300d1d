"""Alembic environment: migrates the database named by the service's own settings."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool, text

from shared.config import load_settings, normalize_database_url
from shared.models import Base
from shared.pooling import connection_options

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> tuple[str, bool]:
    """An explicit `sqlalchemy.url` (tests) wins over the environment; the flag says whether
    the environment's URL goes through a transaction-mode pooler."""
    explicit = config.get_main_option("sqlalchemy.url")
    if explicit:
        return normalize_database_url(explicit), False
    settings = load_settings()
    return normalize_database_url(settings.database_url), settings.transaction_pooled


def run_migrations_offline() -> None:
    context.configure(url=database_url()[0], target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url, transaction_pooled = database_url()
    engine = create_engine(
        url, poolclass=pool.NullPool, connect_args=connection_options(transaction_pooled)
    )
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            # Never wait forever behind a running service's locks, never hang on one
            # statement. SET LOCAL: every migration runs in this one transaction, and through
            # a transaction-mode pooler a plain SET would stay on a server connection that
            # other clients get next (docs/replicas-and-poolers.md#poolers).
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text("SET LOCAL statement_timeout = '10min'"))
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
