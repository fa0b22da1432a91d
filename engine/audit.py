"""The audit log: who changed what, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.models import AuditEntry, User

SYSTEM = "system"


def record(
    session: Session,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: object,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry; `actor` None means the command line or the system itself."""
    entry = AuditEntry(
        actor_id=actor.id if actor else None,
        actor=actor.email if actor else SYSTEM,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        detail=detail or {},
    )
    session.add(entry)
    return entry
