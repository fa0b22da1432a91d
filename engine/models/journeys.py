"""Journeys, their immutable published versions, and the plans that move runs between them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models.base import Base, enum_type, utcnow
from engine.models.states import JourneyStatus, MoveStatus


class Journey(Base):
    """A journey: an editable draft document plus the number of its live version."""

    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[JourneyStatus] = mapped_column(
        enum_type(JourneyStatus), default=JourneyStatus.draft, index=True
    )
    draft: Mapped[dict[str, Any]]
    draft_revision: Mapped[int] = mapped_column(Integer, default=1)
    live_version: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    versions: Mapped[list[JourneyVersion]] = relationship(
        back_populates="journey", order_by="JourneyVersion.number", passive_deletes=True
    )


class JourneyVersion(Base):
    """A published, immutable journey document; runs are pinned to one."""

    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]]
    published_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    published_at: Mapped[datetime] = mapped_column(default=utcnow)

    journey: Mapped[Journey] = relationship(back_populates="versions")


class RunMove(Base):
    """A publish's plan for the runs already in a journey, and how far moving them got.

    `plan` maps "<version id>:<node id>" to a node id of `version_id`, or "exit"; steps the
    plan leaves out keep their runs on their version. `planned` and `moved` count runs by
    the same keys: waiting when the plan was made, moved so far.
    """

    __tablename__ = "run_moves"
    __table_args__ = (Index("ix_run_moves_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE")
    )
    version_id: Mapped[int] = mapped_column(
        ForeignKey("journey_versions.id", ondelete="CASCADE")
    )
    plan: Mapped[dict[str, Any]]
    planned: Mapped[dict[str, Any]] = mapped_column(default=dict)
    moved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[MoveStatus] = mapped_column(
        enum_type(MoveStatus), default=MoveStatus.moving
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
