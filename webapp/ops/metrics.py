"""Prometheus metrics: request counters and figures read live from Redis at scrape time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from flask import Flask, g, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from engine.execution.signals import TIMER_STATS_KEY
from engine.intake.admission import BACKLOG_KEY
from engine.queues import all_queues
from engine.scheduler import HEARTBEAT_KEY

REQUESTS = Counter(
    "throughline_http_requests",
    "HTTP requests answered, by endpoint and status.",
    ["method", "endpoint", "status"],
)
# Labels take only these values, so no request can add series of its own.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
LATENCY = Histogram(
    "throughline_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint.",
    ["endpoint"],
)


class LiveCollector(Collector):
    """Figures read from Redis when scraped: queue depths and the scheduler's heartbeat."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily(
            "throughline_redis_up", "1 when Redis answered this scrape."
        )
        try:
            queues = [(q.name, q.count) for q in all_queues(self.redis)]
            beat: bytes | None = self.redis.get(HEARTBEAT_KEY)  # type: ignore[assignment]
            backlog: bytes | None = self.redis.get(BACKLOG_KEY)  # type: ignore[assignment]
            timer_stats: dict[bytes, bytes] = self.redis.hgetall(TIMER_STATS_KEY)  # type: ignore[assignment]
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "throughline_queue_jobs", "Jobs waiting in each RQ queue.", labels=["queue"]
        )
        for name, count in queues:
            depth.add_metric([name], count)
        yield depth
        yield GaugeMetricFamily(
            "throughline_event_backlog",
            "Events stored and not yet applied (intake refuses new ones past the bound).",
            value=float(backlog or 0),
        )
        if timer_stats:
            stats = {k.decode(): float(v) for k, v in timer_stats.items()}
            lateness = GaugeMetricFamily(
                "throughline_timer_lateness_seconds",
                "How late due runs were advanced in the latest timer sweep.",
                labels=["quantile"],
            )
            lateness.add_metric(["0.99"], stats.get("last_p99", 0.0))
            lateness.add_metric(["1"], stats.get("last_max", 0.0))
            yield lateness
            yield CounterMetricFamily(
                "throughline_timers_fired",
                "Waiting runs advanced by the timer sweep.",
                value=stats.get("fired_total", 0.0),
            )
            yield CounterMetricFamily(
                "throughline_timer_lateness_seconds_sum",
                "Total lateness of every run the timer sweep advanced.",
                value=stats.get("lateness_sum", 0.0),
            )
        if beat is not None:
            yield GaugeMetricFamily(
                "throughline_scheduler_heartbeat_age_seconds",
                "Seconds since a scheduler process last reported itself alive.",
                value=max(0.0, time.time() - float(beat)),
            )


def exposition(redis: Redis) -> bytes:
    """The metrics text: this process's (or every web worker's) plus the live figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        base = CollectorRegistry()
        MultiProcessCollector(base)
    else:
        base = REGISTRY
    live = CollectorRegistry()
    live.register(LiveCollector(redis))
    return generate_latest(base) + generate_latest(live)


def count_request(
    method: str, endpoint: str, status: int, seconds: float | None
) -> None:
    """Count one answered request and, when timed, how long it took."""
    REQUESTS.labels(
        method if method in METHODS else "other", endpoint, str(status)
    ).inc()
    if seconds is not None:
        LATENCY.labels(endpoint).observe(seconds)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _count(response):  # type: ignore[no-untyped-def]
        started = g.get("request_started")
        count_request(
            request.method,
            request.endpoint or "unknown",
            response.status_code,
            None if started is None else time.perf_counter() - started,
        )
        return response
