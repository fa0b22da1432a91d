"""The brand-wide policies above every journey (engine.policies reads the document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, utcnow


class PolicySet(Base):
    """The one set of policies (row 1): frequency caps, quiet hours, the global holdout."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    document: Mapped[dict[str, Any]]
    # Raised by every change; a change that names an older one is refused (412).
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(254))


class SendSlot(Base):
    """How many sends of a journey with a send limit were given a minute (engine.policies)."""

    __tablename__ = "send_slots"

    journey_id: Mapped[int] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
