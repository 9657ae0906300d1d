"""deploy/docker-compose.yml validates against the compose-spec JSON schema (the copy that
check-jsonschema ships) and runs the Procfile's processes from the one image."""

from __future__ import annotations

import copy
import functools
import json
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml
from support.processes import ROOT, procfile_command

COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
# Our services and the Procfile process each one runs.
PROCESSES = {"migrate": "release", "api": "api", "worker": "worker", "beat": "beat"}
PROCESSES |= {"flower": "flower", "stream": "stream"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@functools.cache
def validator() -> jsonschema.protocols.Validator:
    schema_file = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_compose_file_validates_against_the_compose_spec() -> None:
    validator().validate(compose())


@pytest.mark.parametrize(
    ("service", "key", "bad"),
    [
        ("worker", "comand", ["worker"]),  # a misspelt key
        ("api", "ports", "3000:3000"),  # a list, not a string
        ("beat", "depends_on", {"migrate": {"condition": "service_finished"}}),
    ],
)
def test_the_schema_refuses_mistakes(service: str, key: str, bad: object) -> None:
    broken = copy.deepcopy(compose())
    broken["services"][service][key] = bad
    assert not validator().is_valid(broken)


def test_the_stack_has_every_process_and_its_stores() -> None:
    assert set(compose()["services"]) == set(PROCESSES) | {"postgres", "redis", "postgres-replica"}


def test_the_replica_starts_only_with_its_profile() -> None:
    services = compose()["services"]
    assert services["postgres-replica"]["profiles"] == ["replica"]
    # Everything else starts with a plain `up`.
    assert [name for name, s in services.items() if "profiles" in s] == ["postgres-replica"]


def test_the_replica_is_a_base_backup_of_the_primary_that_follows_it() -> None:
    replica = compose()["services"]["postgres-replica"]
    assert replica["image"] == compose()["services"]["postgres"]["image"]
    assert replica["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    script = replica["command"][-1]
    # Copied once, on an empty volume; -R makes it a standby of the primary; then Postgres.
    assert 'if [ ! -s "$$PGDATA/PG_VERSION" ]' in script
    assert "pg_basebackup -h postgres -U postgres" in script
    assert " -R " in script
    assert " -X stream" in script
    assert script.rstrip().endswith("exec postgres")
    (volume,) = replica["volumes"]
    assert volume.split(":")[0] in compose()["volumes"]
    assert volume.split(":")[0] != "postgres-data"


def test_the_primary_serves_replication_with_a_password() -> None:
    stack = compose()
    primary = stack["services"]["postgres"]
    settings = dict(arg.split("=", 1) for arg in primary["command"][1:] if arg != "-c")
    assert settings["wal_level"] in ("replica", "logical")
    assert int(settings["max_wal_senders"]) >= 1
    (config,) = primary["configs"]
    assert config["target"] == settings["hba_file"]
    rules = [line.split() for line in stack["configs"][config["source"]]["content"].splitlines()]
    # From the compose network: replication allowed, and only with a password.
    remote = [r for r in rules if r[0] == "host" and r[3] == "all"]
    assert ["host", "replication", "all", "all", "scram-sha-256"] in remote
    assert all(r[-1] != "trust" for r in remote)


def test_every_service_of_ours_runs_a_procfile_process_from_one_image() -> None:
    services = compose()["services"]
    for name, process in PROCESSES.items():
        service = services[name]
        assert service["command"] == [process]
        assert "entrypoint" not in service
        assert procfile_command(process)
        assert service["image"] == "stacks-token-metadata"
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (COMPOSE_FILE.parent / ".." / "deploy" / "Dockerfile").is_file()


def test_dependencies_name_existing_services_and_migrations_come_first() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
    for name in ("api", "worker", "beat", "flower"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}


def test_beat_is_never_scaled_and_workers_can_be() -> None:
    services = compose()["services"]
    assert "deploy" not in services["beat"]
    # `--scale worker=N` needs no fixed name and no published port.
    assert "container_name" not in services["worker"]
    assert "ports" not in services["worker"]


def test_flower_listens_in_its_container_but_is_published_on_loopback_only() -> None:
    flower = compose()["services"]["flower"]
    assert flower["environment"]["FLOWER_ADDRESS"] == "0.0.0.0"
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    # Passed through from the shell only when set (flower then asks for a login).
    assert flower["environment"]["FLOWER_BASIC_AUTH"] is None
