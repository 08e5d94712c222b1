"""Prometheus metrics of the decision endpoint.

Decisions are tallied in plain Python counters and folded into the Prometheus metrics once a second (and
before every scrape): one ``inc`` per (result, reason) and per histogram bucket instead of two metric
updates per request, which in multi-process mode are writes to memory-mapped files.  With several
workers, ``authz serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so that ``/metrics`` on any worker reports the
sum of all of them (at most a second behind for the workers not scraped).
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
DECISIONS = Counter("authz_decisions_total", "Decisions made, by result and reason", ["result", "reason"])
DECISION_SECONDS = Histogram("authz_decision_seconds", "Time spent deciding (excluding HTTP parsing)", buckets=BUCKETS)

FLUSH_INTERVAL = 1.0


class DecisionTally:
    """Per-process counts of decisions and their durations, folded into the Prometheus metrics."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self._sum = 0.0

    def record(self, result: str, reason: str, seconds: float) -> None:
        key = (result, reason)
        self._counts[key] = self._counts.get(key, 0) + 1
        self._buckets[bisect_left(BUCKETS, seconds)] += 1
        self._sum += seconds

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        buckets, self._buckets = self._buckets, [0] * (len(BUCKETS) + 1)
        total, self._sum = self._sum, 0.0
        for (result, reason), n in counts.items():
            DECISIONS.labels(result, reason).inc(n)
        if not any(buckets):
            return
        # prometheus_client has no bulk observe; its per-bucket values are the documented storage of a
        # Histogram (cumulative counts are computed at collection time from these).
        for index, n in enumerate(buckets):
            if n:
                DECISION_SECONDS._buckets[index].inc(n)  # noqa: SLF001
        DECISION_SECONDS._sum.inc(total)  # noqa: SLF001

    async def flush_forever(self) -> None:
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL)
                self.flush()
        finally:
            self.flush()


TALLY = DecisionTally()


def render() -> tuple[bytes, str]:
    TALLY.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
