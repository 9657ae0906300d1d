"""A worker's Prometheus exporter started on a free loopback port, and its scrapes as samples."""

from __future__ import annotations

from dataclasses import replace

import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings
from support.processes import free_port
from workers import metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def start(settings: Settings) -> metrics.MetricsExporter:
    exporter = metrics.start_exporter(
        replace(settings, worker_metrics_port=free_port()), address="127.0.0.1"
    )
    assert exporter is not None
    return exporter


def scrape(exporter: metrics.MetricsExporter) -> Samples:
    response = requests.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))
