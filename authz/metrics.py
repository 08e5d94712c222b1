"""Prometheus metrics of the decision endpoint.

With several workers, ``authz serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so that ``/metrics`` on any worker
reports the sum of all of them.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

DECISIONS = Counter("authz_decisions_total", "Decisions made, by result and reason", ["result", "reason"])
DECISION_SECONDS = Histogram(
    "authz_decision_seconds",
    "Time spent deciding (excluding HTTP parsing)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

_children: dict[tuple[str, str], Counter] = {}


def count_decision(result: str, reason: str) -> None:
    child = _children.get((result, reason))
    if child is None:
        child = _children[(result, reason)] = DECISIONS.labels(result, reason)  # type: ignore[assignment]
    child.inc()


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
