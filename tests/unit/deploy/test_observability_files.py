"""deploy/prometheus/alerts.yml and deploy/grafana/token-metadata.json: every rule is complete,
every PromQL expression parses (promql-parser, the Prometheus parser's Rust port, offline),
names only metrics the code exports, and every exported metric has a dashboard panel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from flask import Flask
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.registry import Collector
from prometheus_flask_exporter import PrometheusMetrics

import shared.changes
import shared.indexing.fetch_counts
import shared.indexing.freshness
import shared.indexing.host_slots
import shared.webhooks.metrics
import workers.metrics
from api.metrics import _Gauges
from api.stream.app import StreamMetrics
from shared.reads.status import IndexCounts
from workers.freshness_gauges import FreshnessCollector, FreshnessReading
from workers.metrics import Backlog, BacklogCollector

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "token-metadata.json"

# Modules whose metrics live in the process's default registry (imported above for that).
_DEFAULT_REGISTRY_MODULES = (
    shared.changes,
    shared.indexing.fetch_counts,
    shared.indexing.freshness,
    shared.indexing.host_slots,
    shared.webhooks.metrics,
    workers.metrics,
)
# prometheus_client's own collectors in the default registry (the workers export them too):
# platform metrics, which the dashboard may use but need not.
_PLATFORM = re.compile(r"^(process|python)_")
# Series Prometheus itself adds to every target.
_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
    "info": ("_info",),
}
# Grafana's interval variables, as a parser takes them.
_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


class _FixedBacklog(BacklogCollector):
    def __init__(self) -> None:
        pass

    def read(self) -> Backlog:
        return Backlog({"queue": 1}, 1.0)


class _FixedFreshness(FreshnessCollector):
    def __init__(self) -> None:
        pass

    def read(self) -> FreshnessReading:
        return FreshnessReading({"queue": 1.0}, 1)


def _families(collector: Collector | CollectorRegistry) -> Iterator[tuple[str, str]]:
    for metric in collector.collect():
        yield metric.name, metric.type


def exported() -> dict[str, tuple[str, ...]]:
    """Every metric family the service exports, with the series names it appears as."""
    families: list[tuple[str, str]] = []
    families += _families(REGISTRY)
    families += _families(StreamMetrics.create().registry)
    flask_registry = CollectorRegistry()
    PrometheusMetrics(Flask(__name__), path=None, registry=flask_registry)
    families += _families(flask_registry)
    families += _families(_Gauges(IndexCounts()))
    families += _families(_FixedBacklog())
    families += _families(_FixedFreshness())
    return {name: tuple(name + s for s in _SUFFIXES.get(kind, ("",))) for name, kind in families}


def _service_metrics() -> dict[str, tuple[str, ...]]:
    return {name: series for name, series in exported().items() if not _PLATFORM.match(name)}


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_expressions() -> list[str]:
    return [
        target["expr"]
        for panel in _panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def _grafana_to_promql(expression: str) -> str:
    for variable, value in _GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    return expression


def series_names(expression: str) -> set[str]:
    """The metric names an expression selects; raises ValueError when it does not parse."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expression), visit)
    return names


def all_expressions() -> list[tuple[str, str]]:
    return [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()] + [
        ("dashboard", _grafana_to_promql(expr)) for expr in dashboard_expressions()
    ]


def test_the_parser_rejects_a_broken_expression() -> None:
    assert series_names("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))") == {
        "x_bucket"
    }
    with pytest.raises(ValueError, match="parenthesis"):
        series_names("sum(rate(x_total[5m])")


def test_every_alert_rule_is_complete() -> None:
    rules = alert_rules()
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_the_dashboard_is_importable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39
    assert board["uid"]
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in _panels(board["panels"])]
    assert len(ids) == len(set(ids))
    for panel in _panels(board["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert panel["targets"], panel["title"]


@pytest.mark.parametrize(("where", "expression"), all_expressions())
def test_every_expression_parses_and_names_exported_metrics(where: str, expression: str) -> None:
    known = {series for names in exported().values() for series in names} | _SYNTHETIC
    unknown = series_names(expression) - known
    assert not unknown, f"{where}: {expression} names {sorted(unknown)}"


def test_every_exported_metric_has_a_dashboard_panel() -> None:
    graphed: set[str] = set()
    for expression in dashboard_expressions():
        graphed |= series_names(_grafana_to_promql(expression))
    missing = [
        name for name, series in _service_metrics().items() if not graphed.intersection(series)
    ]
    assert not missing, f"metrics without a panel in {DASHBOARD.name}: {sorted(missing)}"


def test_the_inventory_covers_every_part() -> None:
    """A guard on exported() itself: a metric of each process is found."""
    names = set(_service_metrics())
    assert {
        "flask_http_request_duration_seconds",
        "token_metadata_block_height",
        "token_metadata_chain_checkpoint_unknown",
        "token_metadata_tasks",
        "token_metadata_queue_length",
        "token_metadata_fetch_outcomes",
        "token_metadata_oldest_due_job_age_seconds",
        "token_metadata_dynamic_tokens_overdue",
        "token_metadata_changes_written",
        "token_metadata_webhook_feed_lag_seconds",
        "token_metadata_stream_subscribers",
    } <= names
