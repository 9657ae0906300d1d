"""deploy/k8s: every manifest validates offline (kubernetes-validate's vendored schemas for the
built-in kinds, our KEDA schema for the ScaledObject) and agrees with the Procfile, the
Dockerfile and the ConfigMap."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from support.processes import ROOT, procfile_command

from shared.config import Settings
from shared.queues import CHAIN_QUEUE, WORKER_QUEUES

K8S = ROOT / "deploy" / "k8s"
KEDA_SCHEMA = Path(__file__).parent / "schemas" / "keda-scaledobject.schema.json"
# The oldest Kubernetes we claim to support, and the newest the validator knows.
VERSIONS = ("1.29", kubernetes_validate.latest_version())
# Each component runs the Procfile process of this name (deploy/entrypoint.sh).
PROCESS_OF = {"api": "api", "worker": "worker", "beat": "beat", "flower": "flower"}
PROCESS_OF |= {"migrate": "release", "stream": "stream"}
NON_API_KINDS = {"ScaledObject"}


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _file, doc in documents() if doc["kind"] == kind}


def pod_specs() -> dict[str, dict[str, Any]]:
    """Pod templates by component label (Deployments and the migration Job)."""
    pods = {}
    for _file, doc in documents():
        if doc["kind"] in ("Deployment", "Job"):
            template = doc["spec"]["template"]
            pods[template["metadata"]["labels"]["app.kubernetes.io/component"]] = template
    return pods


def config() -> dict[str, str]:
    return of_kind("ConfigMap")["token-metadata-config"]["data"]


@functools.cache
def keda_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(KEDA_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


BUILT_IN = [(f, d) for f, d in documents() if d["kind"] not in NON_API_KINDS]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("file", "doc"), BUILT_IN, ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in BUILT_IN]
)
def test_built_in_resources_validate_strictly(file: str, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_refuses_a_misspelt_field() -> None:
    broken = copy.deepcopy(of_kind("Deployment")["token-metadata-beat"])
    broken["spec"]["template"]["spec"]["containers"][0]["arg"] = ["beat"]
    with pytest.raises(kubernetes_validate.ValidationError, match="'arg' was unexpected"):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_scaled_object_validates_against_the_keda_schema() -> None:
    validator = keda_validator()
    for scaled in of_kind("ScaledObject").values():
        validator.validate(scaled)


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("spec", "triggers", 0, "metadata", "listLength"), 500),  # KEDA takes strings only
        (("spec", "triggers", 0, "metadata", "listname"), "tokens"),
        (("spec", "maxReplicas"), 10),
    ],
)
def test_keda_schema_refuses_what_keda_would_not_take(path: tuple[Any, ...], bad: object) -> None:
    broken = copy.deepcopy(next(iter(of_kind("ScaledObject").values())))
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    assert not keda_validator().is_valid(broken)


def test_every_pod_runs_a_procfile_process_by_name() -> None:
    pods = pod_specs()
    assert set(pods) == set(PROCESS_OF)
    for component, pod in pods.items():
        (container,) = pod["spec"]["containers"]
        assert "command" not in container  # keep the image's entry point
        assert container["args"] == [PROCESS_OF[component]]
        assert procfile_command(PROCESS_OF[component])


def test_one_image_runs_every_process() -> None:
    images = {c["image"] for pod in pod_specs().values() for c in pod["spec"]["containers"]}
    assert images == {"stacks-token-metadata:latest"}


def test_pods_run_as_the_images_non_root_user() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    user = next(line for line in reversed(dockerfile.splitlines()) if line.startswith("USER "))
    uid = int(user.split()[1].split(":")[0])
    for pod in pod_specs().values():
        context = pod["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == uid
        for container in pod["spec"]["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_exactly_one_beat_even_during_a_rollout() -> None:
    beat = of_kind("Deployment")["token-metadata-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert "token-metadata-beat" not in {
        s["spec"]["scaleTargetRef"]["name"] for s in of_kind("ScaledObject").values()
    }


def test_services_select_their_pods_and_ports() -> None:
    deployments = of_kind("Deployment")
    for name, service in of_kind("Service").items():
        pod = deployments[name]["spec"]["template"]
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_api_listens_where_the_procfile_binds_it() -> None:
    (container,) = pod_specs()["api"]["spec"]["containers"]
    assert procfile_command("api") == "python -m api.serve"  # binds API_PORT, default 3000
    assert Settings().api_port == 3000
    assert "API_PORT" not in config()
    assert [p["containerPort"] for p in container["ports"]] == [3000]


def test_stream_listens_where_its_settings_bind_it_and_is_scraped_there() -> None:
    pod = pod_specs()["stream"]
    (container,) = pod["spec"]["containers"]
    assert procfile_command("stream") == "python -m api.stream"  # binds STREAM_PORT
    assert Settings().stream_port == 3001
    assert "STREAM_PORT" not in config()
    assert [p["containerPort"] for p in container["ports"]] == [3001]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "3001"


def test_worker_metrics_port_is_declared_and_annotated() -> None:
    pod = pod_specs()["worker"]
    (container,) = pod["spec"]["containers"]
    port = int(config()["WORKER_METRICS_PORT"])
    assert {"name": "metrics", "containerPort": port} in container["ports"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def test_worker_autoscaling_reads_our_queues_on_our_redis() -> None:
    (scaled,) = of_kind("ScaledObject").values()
    target = of_kind("Deployment")[scaled["spec"]["scaleTargetRef"]["name"]]
    assert target["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == (
        "worker"
    )
    # Beat's own tasks go through the chain queue: never scale to zero workers.
    assert scaled["spec"]["minReplicaCount"] >= 1
    redis_url = urlsplit(config()["REDIS_URL"])
    lists = set()
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "redis"
        meta = trigger["metadata"]
        assert meta["address"] == f"{redis_url.hostname}:{redis_url.port or 6379}"
        assert meta["databaseIndex"] == (redis_url.path.strip("/") or "0")
        lists.add(meta["listName"])
    assert lists == set(WORKER_QUEUES) - {CHAIN_QUEUE}


def test_worker_queues_in_the_procfile_are_the_app_queues() -> None:
    assert f"--queues {','.join(WORKER_QUEUES)} " in procfile_command("worker")


def test_kustomization_applies_every_manifest_but_the_migration_job() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"migrate-job.yaml"}
    assert [i["name"] for i in kustomization["images"]] == ["stacks-token-metadata"]


def test_api_scales_on_cpu_between_bounds_and_owns_its_replica_count() -> None:
    (autoscaler,) = of_kind("HorizontalPodAutoscaler").values()
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    deployment = of_kind("Deployment")[target["name"]]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "api"
    # The autoscaler sets the count: a fixed one would be reset by every `kubectl apply`.
    assert "replicas" not in deployment["spec"]
    assert 2 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] < 100
    # Utilisation is a share of the CPU request: without one the autoscaler cannot compute it.
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        assert container["resources"]["requests"]["cpu"]


def test_one_autoscaler_per_deployment_and_none_for_beat() -> None:
    scaled = [s["spec"]["scaleTargetRef"]["name"] for s in of_kind("ScaledObject").values()]
    scaled += [
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind("HorizontalPodAutoscaler").values()
    ]
    assert len(scaled) == len(set(scaled))  # KEDA's own autoscaler and ours would fight
    assert set(scaled) == {"token-metadata-api", "token-metadata-worker"}
