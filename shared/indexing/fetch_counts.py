"""`token_metadata_fetch_outcomes_total{kind,host_class,outcome}`: every fetch of a metadata
document or an image, counted once where its result is known (docs/freshness.md#fetch-outcomes).

In the process's default registry: workers export it (workers/metrics.py); the API never
imports this module. Each worker counts its own fetches, so a fleet's total is their `sum()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from prometheus_client import Counter

from shared.metadata.outcomes import HostClass, classify_fetch

FetchKind = Literal["metadata", "image"]

FETCH_OUTCOMES = Counter(
    "token_metadata_fetch_outcomes",
    "Metadata documents and images fetched, by kind (metadata, image), host class "
    "(ipfs_gateway, arweave_gateway, http, data_uri) and outcome (ok, timeout, http_error, ...)",
    ["kind", "host_class", "outcome"],
)


def count_fetch(kind: FetchKind, host: HostClass, error: BaseException | None = None) -> None:
    """Count one fetch that raised `error` (None: it succeeded)."""
    FETCH_OUTCOMES.labels(kind, host, classify_fetch(error)).inc()


@contextmanager
def counted_fetch(kind: FetchKind, host: HostClass) -> Iterator[None]:
    """Count the fetch (and parse) run inside by how it ended; an exception goes on."""
    try:
        yield
    except Exception as exc:
        count_fetch(kind, host, exc)
        raise
    count_fetch(kind, host)
