"""Pre-aggregated figures, one row per journey, metric, hour, version, node, channel, label and
writer shard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base


class Counter(Base):
    """Pre-aggregated figures, added to in the same transaction as what they count.

    A row counts `metric` (with its `label`: an outcome, a status, a reason, a histogram
    bucket) for one journey version, node and channel in one hour. Drains of different
    partitions write different `shard`s, so they never wait on each other's rows; readers
    sum over shards. `journey_id` 0 holds figures that belong to no journey (events in).
    """

    __tablename__ = "counters"

    journey_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
