"""Housekeeping the scheduler runs periodically."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from engine.models import Channel


def expire_rotated_secrets(session: Session, now: datetime) -> int:
    """Drop previous inbound secrets past their grace period; returns how many."""
    result = session.execute(
        update(Channel)
        .where(Channel.previous_inbound_expires_at.is_not(None))
        .where(Channel.previous_inbound_expires_at <= now)
        .values(previous_inbound_secret=None, previous_inbound_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
