"""Reading the counters: totals over a window, by hour, by journey and by channel, and
percentiles of their histograms. A query sums rows over shards and hours, so its cost depends
on journeys, nodes and hours, not on customers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.analytics.counters import HOURLY_FOR, OVER, hour_of
from engine.models import Counter


@dataclass(frozen=True)
class Window:
    """Which counters a figure covers: hours [since, until), some versions or all."""

    since: datetime | None = None
    until: datetime | None = None
    version_ids: tuple[int, ...] = ()


def first_bucket(since: datetime, now: datetime | None = None) -> datetime:
    """Where a window starting at `since` starts reading: its hour, or its day's midnight
    when that day is folded into one row (older than the hourly horizon)."""
    start = hour_of(since)
    if start < (hour_of(now or datetime.now(since.tzinfo)) - HOURLY_FOR).replace(
        hour=0
    ):
        return start.replace(hour=0)
    return start


def _dated(statement: Any, window: Window) -> Any:
    if window.since is not None:
        statement = statement.where(Counter.bucket >= first_bucket(window.since))
    if window.until is not None:
        statement = statement.where(Counter.bucket < window.until)
    return statement


def _where(statement: Any, journey_id: int, window: Window, dated: bool = True) -> Any:
    statement = statement.where(Counter.journey_id == journey_id)
    if dated:
        statement = _dated(statement, window)
    if window.version_ids:
        statement = statement.where(Counter.version_id.in_(window.version_ids))
    return statement


Totals = dict[tuple[str, str, int, str], int]


def totals(
    session: Session,
    journey_id: int,
    window: Window = Window(),
    metrics: tuple[str, ...] = (),
    dated: bool = True,
) -> Totals:
    """Sums by (metric, node, channel, label) over the window."""
    statement = select(
        Counter.metric,
        Counter.node_id,
        Counter.channel_id,
        Counter.label,
        func.sum(Counter.value),
    ).group_by(Counter.metric, Counter.node_id, Counter.channel_id, Counter.label)
    statement = _where(statement, journey_id, window, dated)
    if metrics:
        statement = statement.where(Counter.metric.in_(metrics))
    return {
        (metric, node, channel, label): int(value or 0)
        for metric, node, channel, label, value in session.execute(statement)
    }


def by_hour(
    session: Session, journey_id: int, window: Window, metrics: tuple[str, ...]
) -> dict[tuple[datetime, str, str], int]:
    """Sums by (hour, metric, label), for trends."""
    statement = select(
        Counter.bucket, Counter.metric, Counter.label, func.sum(Counter.value)
    ).group_by(Counter.bucket, Counter.metric, Counter.label)
    statement = _where(statement, journey_id, window).where(Counter.metric.in_(metrics))
    return {
        (bucket, metric, label): int(value or 0)
        for bucket, metric, label, value in session.execute(statement)
    }


def by_journey(
    session: Session, metrics: tuple[str, ...], window: Window | None = None
) -> dict[tuple[int, str, str], int]:
    """Sums by (journey, metric, label) for every journey, for the overview."""
    statement = (
        select(
            Counter.journey_id, Counter.metric, Counter.label, func.sum(Counter.value)
        )
        .where(Counter.metric.in_(metrics))
        .group_by(Counter.journey_id, Counter.metric, Counter.label)
    )
    if window is not None:
        statement = _dated(statement, window)
    return {
        (journey, metric, label): int(value or 0)
        for journey, metric, label, value in session.execute(statement)
    }


def by_channel(
    session: Session, metric: str, label: str, window: Window
) -> dict[int, int]:
    """Sums by channel of one metric and label over every journey, for channel-wide figures."""
    statement = (
        select(Counter.channel_id, func.sum(Counter.value))
        .where(Counter.metric == metric, Counter.label == label)
        .group_by(Counter.channel_id)
    )
    return {
        int(channel): int(value or 0)
        for channel, value in session.execute(_dated(statement, window))
    }


def percentile(histogram: dict[str, int], share: float) -> float | None:
    """The bucket bound under which `share` of the counted values fall (None if empty)."""
    total = sum(histogram.values())
    if not total:
        return None
    ordered = sorted(
        histogram.items(),
        key=lambda item: float("inf") if item[0] == OVER else float(item[0]),
    )
    running = 0
    for label, count in ordered:
        running += count
        if running >= share * total:
            return float("inf") if label == OVER else float(label)
    return float("inf")


def since_hours(now: datetime, hours: int) -> datetime:
    return hour_of(now) - timedelta(hours=hours - 1)
