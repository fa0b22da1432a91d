"""Who leads the schedulers, and which slot of each periodic job has run (engine.leadership)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, BigID, utcnow


class SchedulerLease(Base):
    """The fencing token of the scheduler that leads now (row `scheduler`).

    The lease itself lives in Redis and expires by itself; this row keeps the highest token
    ever handed out, so a token is never given twice even when Redis lost everything, and a
    job carrying an older token is refused.
    """

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    fence: Mapped[int] = mapped_column(BigID)
    holder: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime] = mapped_column(default=utcnow)


class PeriodicRun(Base):
    """One periodic job's run in one slot (its period's number since the epoch): at most
    one run per slot, whichever scheduler queued it."""

    __tablename__ = "periodic_runs"

    task: Mapped[str] = mapped_column(String(60), primary_key=True)
    slot: Mapped[int] = mapped_column(BigID, primary_key=True)
    fence: Mapped[int] = mapped_column(BigID)
    ran_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
