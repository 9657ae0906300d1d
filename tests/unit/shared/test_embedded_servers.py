"""Which PostgreSQL and Redis `make run` and `make test` use (shared/embedded/,
docs/embedded-servers.md): the decision, with the servers' answers made up."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.config import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL
from shared.embedded import choice as server_choice
from shared.embedded.choice import (
    ServerNotAnswering,
    address,
    choose_postgres,
    choose_redis,
)
from shared.embedded.postgres import EmbeddedPostgres
from shared.embedded.servers import provide


def answering(*urls: str) -> Callable[[str], bool]:
    """A probe under which only the servers of `urls` answer (compared by address)."""
    up = {address(url) for url in urls}
    return lambda url: address(url) in up


NOBODY = answering()


def test_a_configured_postgres_that_does_not_answer_stops_naming_the_variable_and_address():
    env = {"DATABASE_URL": "postgresql://tm:secret@db.internal:6543/tm"}
    with pytest.raises(ServerNotAnswering) as raised:
        # The default answers: there is no falling back to it.
        choose_postgres(env, answering(DEFAULT_DATABASE_URL))
    message = str(raised.value)
    assert message.startswith("DATABASE_URL: no PostgreSQL server answers at db.internal:6543")
    assert "\n" not in message
    assert "secret" not in message


def test_a_configured_redis_that_does_not_answer_stops_naming_the_variable_and_address():
    with pytest.raises(ServerNotAnswering, match=r"^REDIS_URL: .* at 127\.0\.0\.1:6380 "):
        choose_redis({"REDIS_URL": "redis://127.0.0.1:6380/0"}, answering(DEFAULT_REDIS_URL))


def test_the_reference_pg_variables_configure_postgres_and_are_named_when_it_is_down():
    env = {"PGHOST": "db.internal", "PGPORT": "6543"}
    with pytest.raises(ServerNotAnswering, match=r"^PGHOST/PGPORT: .* at db\.internal:6543 "):
        choose_postgres(env, NOBODY)
    choice = choose_postgres(env, answering("postgresql://x@db.internal:6543/y"))
    assert (choice.url, choice.variable) == (
        "postgresql+psycopg://postgres@db.internal:6543/token_metadata",
        "PGHOST/PGPORT",
    )


def test_a_configured_server_that_answers_is_used():
    env = {"DATABASE_URL": "postgresql://u@db:5432/tm", "REDIS_URL": "redis://cache:6379/2"}
    pg = choose_postgres(env, answering(env["DATABASE_URL"]))
    cache = choose_redis(env, answering(env["REDIS_URL"]))
    assert (pg.url, pg.variable, pg.embedded) == (env["DATABASE_URL"], "DATABASE_URL", False)
    assert (cache.url, cache.variable, cache.embedded) == (env["REDIS_URL"], "REDIS_URL", False)


def test_nothing_configured_and_the_defaults_answer_nothing_embedded():
    up = answering(DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL)
    pg, cache = choose_postgres({}, up), choose_redis({}, up)
    assert (pg.url, pg.variable, pg.embedded) == (DEFAULT_DATABASE_URL, None, False)
    assert (cache.url, cache.variable, cache.embedded) == (DEFAULT_REDIS_URL, None, False)


def test_nothing_configured_and_nothing_at_the_defaults_embedded():
    pg, cache = choose_postgres({}, NOBODY), choose_redis({}, NOBODY)
    assert (pg.url, pg.embedded, pg.default_url) == (None, True, DEFAULT_DATABASE_URL)
    assert (cache.url, cache.embedded, cache.default_url) == (None, True, DEFAULT_REDIS_URL)


def test_the_default_addresses_can_be_pointed_elsewhere():
    """How a machine whose servers answer at the defaults tries the embedded path."""
    env = {
        "DEFAULT_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/token_metadata",
        "DEFAULT_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    up = answering(DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL)
    assert choose_postgres(env, up).embedded
    assert choose_redis(env, up).embedded
    assert choose_postgres(env, up).default_url == env["DEFAULT_DATABASE_URL"]


def test_a_configured_server_is_probed_and_nothing_else():
    asked: list[str] = []

    def probe(url: str) -> bool:
        asked.append(url)
        return True

    choose_postgres({"DATABASE_URL": "postgresql://u@db:5432/tm"}, probe)
    assert asked == ["postgresql://u@db:5432/tm"]


def test_provide_starts_nothing_when_a_configured_server_is_down(tmp_path, monkeypatch):
    started: list[str] = []
    monkeypatch.setattr(server_choice, "postgres_answers", NOBODY)
    monkeypatch.setattr(server_choice, "redis_answers", NOBODY)
    monkeypatch.setattr(EmbeddedPostgres, "start", lambda *a, **k: started.append("pg"))
    with pytest.raises(ServerNotAnswering, match=r"^REDIS_URL"):
        provide({"REDIS_URL": "redis://127.0.0.1:6390/0"}, tmp_path, say=started.append)
    assert started == []
    assert list(tmp_path.iterdir()) == []


def test_addresses_never_show_credentials():
    assert address("postgresql+psycopg://u:pw@db.example:6000/x") == "db.example:6000"
    assert address("postgresql://u@db.example/x") == "db.example:5432"
    assert address("redis://:pw@cache/0") == "cache:6379"
