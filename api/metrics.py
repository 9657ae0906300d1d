"""Prometheus at `/metrics`: request counts and latency per route and status, and the index gauges.

Request metrics come from prometheus-flask-exporter. Under gunicorn every worker writes them to
`PROMETHEUS_MULTIPROC_DIR` (see api/gunicorn_conf.py) and a scrape adds up all the workers.
The reference's gauges are read at scrape time from the counts cache shared with the status
route: at most one query per scrape, none per request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Request, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_flask_exporter import PrometheusMetrics

from api.db import get_counts_cache, get_session
from shared.reads.status import IndexCounts, count_index

METRICS_PATH = "/metrics"
# `record(method, route, status, seconds)` for requests answered outside Flask (api.fast_routes).
REQUEST_RECORDER = "token_metadata_record_request"
RequestRecorder = Callable[[str, str, int, float], None]
# prometheus_client itself reads this variable; we only need to know whether it is set.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def route(request: Request) -> str:
    """The matched rule (bounded label values), not the raw path."""
    return request.url_rule.rule if request.url_rule is not None else "<unmatched>"


class _Gauges(Collector):
    def __init__(self, counts: IndexCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        height = GaugeMetricFamily(
            "token_metadata_block_height", "The most recent Stacks block height processed"
        )
        height.add_metric([], self.counts.block_height)
        yield height
        yield GaugeMetricFamily(
            "token_metadata_chain_checkpoint_unknown",
            "1 while the Stacks API database has no row for the block the chain monitor stopped"
            " at (re-synced or restored, behind): the monitor waits for it",
            value=int(self.counts.checkpoint_unknown),
        )
        described = {
            "type": ("token_metadata_token_count", "Number of tokens by type"),
            "sip": ("token_metadata_smart_contract_count", "Number of token contracts by SIP"),
            "status": ("token_metadata_job_count", "Number of jobs by status"),
        }
        for label, values in self.counts.gauges().items():
            name, documentation = described[label]
            family = GaugeMetricFamily(name, documentation, labels=[label])
            for value, count in values.items():
                family.add_metric([value], count)
            yield family


class _NamedRegistry(CollectorRegistry):
    """Remembers its collectors by metric name, so the exporter's request metrics can be fed
    by requests that never reach Flask."""

    def __init__(self) -> None:
        super().__init__()
        self.by_name: dict[str, Collector] = {}

    def register(self, collector: Collector) -> None:
        super().register(collector)
        for metric in collector.describe():
            self.by_name[metric.name] = collector


def _recorder(registry: _NamedRegistry) -> RequestRecorder:
    """The same samples the exporter's after_request adds for a Flask request."""
    duration: Any = registry.by_name["flask_http_request_duration_seconds"]
    total: Any = registry.by_name["flask_http_request"]

    def record(method: str, rule: str, status: int, seconds: float) -> None:
        duration.labels(method=method, route=rule, status=status).observe(seconds)
        total.labels(method=method, status=status).inc()

    return record


def init_app(app: Flask) -> None:
    registry = _NamedRegistry()
    exporter = PrometheusMetrics(app, path=None, registry=registry, group_by=route)
    app.extensions[REQUEST_RECORDER] = _recorder(registry)

    @exporter.do_not_track()
    def metrics() -> Response:
        gauges = CollectorRegistry()
        session = get_session()
        gauges.register(_Gauges(get_counts_cache().get(lambda: count_index(session))))
        if os.environ.get(MULTIPROCESS_ENV):
            requests = CollectorRegistry()
            MultiProcessCollector(requests)
        else:
            requests = registry
        body = generate_latest(requests) + generate_latest(gauges)
        return current_app.response_class(body, content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule(METRICS_PATH, "metrics", metrics)
