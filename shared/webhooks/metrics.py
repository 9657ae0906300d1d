"""Prometheus metrics of webhook deliveries, in the process's default registry (which the
worker's exporter serves whole, workers/metrics.py):

- `token_metadata_webhook_deliveries_total{outcome}`: POSTs by outcome (delivered, failed,
  refused);
- `token_metadata_webhook_delivery_latency_seconds`: from the commit of a batch's newest
  entry (`at`) to its acknowledgement;
- `token_metadata_webhook_feed_lag_entries{subscription}`: ids between the newest entry and
  the subscription's position (an upper bound: ids have gaps and filters skip entries), and
  `token_metadata_webhook_feed_lag_seconds{subscription}`: the age of its oldest undelivered
  entry (0 when caught up). Set by the dispatcher every run: take `max()` across workers.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter("token_metadata_webhook_deliveries", "Webhook POSTs, by outcome", ["outcome"])
DELIVERY_LATENCY = Histogram(
    "token_metadata_webhook_delivery_latency_seconds",
    "From the commit of a delivered batch's newest entry to its acknowledgement",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)
FEED_LAG_ENTRIES = Gauge(
    "token_metadata_webhook_feed_lag_entries",
    "Entry ids after a subscription's last delivered id (an upper bound)",
    ["subscription"],
)
FEED_LAG_SECONDS = Gauge(
    "token_metadata_webhook_feed_lag_seconds",
    "Age of a subscription's oldest undelivered entry",
    ["subscription"],
)


def set_feed_lag(lags: Iterable[tuple[int, int, float]]) -> None:
    """(subscription id, entries behind, seconds behind) of every active subscription;
    subscriptions no longer listed are dropped."""
    FEED_LAG_ENTRIES.clear()
    FEED_LAG_SECONDS.clear()
    for subscription, entries, seconds in lags:
        FEED_LAG_ENTRIES.labels(str(subscription)).set(entries)
        FEED_LAG_SECONDS.labels(str(subscription)).set(seconds)
