"""Customer profiles and the identifiers that name them on each channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models.base import Base, BigID, JSONDoc, utcnow


class Customer(Base):
    """One profile per person, across every channel."""

    __tablename__ = "customers"
    # An erased profile's id is never given to another person (the audit log names it).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    consent: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Channel ids that have sent events about this person (for context retention).
    seen_channels: Mapped[list[int]] = mapped_column(JSONDoc, default=list)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    identities: Mapped[list[Identity]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", passive_deletes=True
    )


class Identity(Base):
    """An identifier (customer id, email, phone, anonymous id, ...) that finds a profile."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(320))
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")
