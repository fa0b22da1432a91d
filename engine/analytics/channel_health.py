"""A channel's health: events in, deliveries out and refusals over the last day, and its breaker.

Events and deliveries are counted in SQL. Refused requests are never stored there (intake
answers them before writing anything), so intake counts them in Redis by the hour; when
Redis is unreachable those figures and the breaker state are unknown, not zero.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.delivery.breaker import BreakerState, breaker_states
from engine.models import Channel, Delivery, DeliveryStatus, Event, EventStatus

WINDOW = timedelta(hours=24)
_HOURS = 24
_KEY = "throughline:rejections:{slug}:{part}"
_LAST_TTL = int(timedelta(days=7).total_seconds())


@dataclass(frozen=True)
class Rejection:
    """The latest request a channel's intake refused: its status, code, sentence, time and
    the field at fault (the value sent is never kept)."""

    status: int
    code: str
    message: str
    at: datetime
    field: str | None = None


@dataclass(frozen=True)
class Health:
    """One channel's figures over the last 24 hours."""

    events: int = 0
    failed_events: int = 0
    pending_events: int = 0
    last_event_at: datetime | None = None
    rejected: int | None = None  # None: Redis did not answer
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    last_rejection: Rejection | None = None
    delivered: int = 0
    failed_deliveries: int = 0
    suppressed: int = 0
    breaker: BreakerState = BreakerState("unknown")

    @property
    def success_rate(self) -> float | None:
        """Delivered among deliveries that ended delivered or failed; None when none did."""
        settled = self.delivered + self.failed_deliveries
        return self.delivered / settled if settled else None


def _hour_keys(slug: str, now: datetime) -> list[str]:
    return [
        _KEY.format(slug=slug, part=(now - timedelta(hours=h)).strftime("%Y%m%d%H"))
        for h in range(_HOURS)
    ]


def record_rejection(
    redis: Redis,
    slug: str,
    status: int,
    code: str,
    message: str,
    now: datetime,
    field: str | None = None,
) -> None:
    """Count a refused request of a known channel in this hour's bucket and keep it as the
    latest (raises RedisError). `message` says why in words that hold no submitted value.
    """
    key = _hour_keys(slug, now)[0]
    last = {
        "status": status,
        "code": code,
        "message": message,
        "field": field,
        "at": now.isoformat(),
    }
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(key, code, 1)
    pipe.expire(key, int((WINDOW + timedelta(hours=1)).total_seconds()))
    pipe.set(_KEY.format(slug=slug, part="last"), json.dumps(last), ex=_LAST_TTL)
    pipe.execute()


def _rejections(
    redis: Redis, slugs: Sequence[str], now: datetime
) -> dict[str, tuple[dict[str, int], Rejection | None]] | None:
    pipe = redis.pipeline(transaction=False)
    for slug in slugs:
        for key in _hour_keys(slug, now):
            pipe.hgetall(key)
        pipe.get(_KEY.format(slug=slug, part="last"))
    try:
        values: list[Any] = pipe.execute()
    except RedisError:
        return None
    found = {}
    step = _HOURS + 1
    for index, slug in enumerate(slugs):
        chunk = values[index * step : (index + 1) * step]
        by_code: dict[str, int] = {}
        for bucket in chunk[:-1]:
            for code, count in bucket.items():
                name = code.decode()
                by_code[name] = by_code.get(name, 0) + int(count)
        last = None
        if chunk[-1]:
            raw = json.loads(chunk[-1])
            last = Rejection(
                raw["status"],
                raw["code"],
                raw["message"],
                datetime.fromisoformat(raw["at"]),
                raw.get("field"),
            )
        found[slug] = (by_code, last)
    return found


def channel_health(
    session: Session, redis: Redis, channels: Sequence[Channel], now: datetime
) -> dict[int, Health]:
    """Health of each channel, in three SQL queries and two Redis round trips at most."""
    if not channels:
        return {}
    ids = [channel.id for channel in channels]
    since = now - WINDOW
    events: dict[int, dict[EventStatus, int]] = {i: {} for i in ids}
    latest: dict[int, datetime] = {}
    for channel_id, status, count, last_at in session.execute(
        select(
            Event.channel_id, Event.status, func.count(), func.max(Event.received_at)
        )
        .where(Event.channel_id.in_(ids), Event.received_at >= since)
        .group_by(Event.channel_id, Event.status)
    ):
        events[channel_id][status] = count
        if channel_id not in latest or last_at > latest[channel_id]:
            latest[channel_id] = last_at
    deliveries: dict[int, dict[DeliveryStatus, int]] = {i: {} for i in ids}
    for sent_by, outcome, number in session.execute(
        select(Delivery.channel_id, Delivery.status, func.count())
        .where(Delivery.channel_id.in_(ids), Delivery.finished_at >= since)
        .group_by(Delivery.channel_id, Delivery.status)
    ):
        if sent_by is not None:
            deliveries[sent_by][outcome] = number
    breakers = breaker_states(redis, ids)
    reachable = any(b.state != "unknown" for b in breakers.values())
    refused = (
        _rejections(redis, [channel.slug for channel in channels], now)
        if reachable
        else None  # no second wait for a Redis that just failed to answer
    )
    found = {}
    for channel in channels:
        counted, sent = events[channel.id], deliveries[channel.id]
        by_code, last = refused.get(channel.slug, ({}, None)) if refused else ({}, None)
        found[channel.id] = Health(
            events=sum(counted.values()),
            failed_events=counted.get(EventStatus.failed, 0),
            pending_events=counted.get(EventStatus.pending, 0),
            last_event_at=latest.get(channel.id),
            rejected=sum(by_code.values()) if refused is not None else None,
            rejected_by_code=by_code,
            last_rejection=last,
            delivered=sent.get(DeliveryStatus.delivered, 0),
            failed_deliveries=sent.get(DeliveryStatus.failed, 0),
            suppressed=sent.get(DeliveryStatus.suppressed, 0),
            breaker=breakers[channel.id],
        )
    return found
