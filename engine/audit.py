"""The audit log: who changed what, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.models import AuditEntry, User

SYSTEM = "system"

# What each recorded action means, in words, grouped as the audit log's filter shows them. A
# prefix ending in "." picks a whole group; an action not listed here shows under its own name.
ACTION_GROUPS: dict[str, dict[str, str]] = {
    "Journeys": {
        "journey.": "Any journey change",
        "journey.create": "Journey created",
        "journey.draft": "Draft saved",
        "journey.publish": "Journey published",
        "journey.pause": "Journey paused",
        "journey.resume": "Journey resumed",
        "journey.archive": "Journey archived",
        "journey.restore": "Journey restored",
        "journey.restore_version": "Version restored as draft",
    },
    "Customers": {
        "customer.": "Any customer change",
        "customer.consent": "Consent changed",
        "customer.erase": "Customer erased",
        "customer.merge": "Profiles merged",
    },
    "Channels": {
        "channel.": "Any channel change",
        "channel.create": "Channel connected",
        "channel.update": "Channel settings changed",
        "channel.disable": "Channel disabled",
        "channel.enable": "Channel enabled",
        "channel.rotate": "Secrets rotated",
        "channel.test": "Test delivery sent",
    },
    "Users and access": {
        "user.": "Any user change",
        "user.create": "User added",
        "user.update": "Role or access changed",
        "user.password": "Password set",
        "token.create": "API token created",
    },
    "Decisions": {
        "decision.": "Any decision table change",
        "decision.create": "Decision table created",
        "decision.draft": "Decision table draft saved",
        "decision.publish": "Decision table published",
        "decision.restore_version": "Decision table version restored as draft",
    },
    "Event schemas": {
        "schema.": "Any event schema change",
        "schema.update": "Event schema saved",
        "schema.replay": "Refused events replayed",
    },
    "Policies": {"policy.update": "Brand-wide policies changed"},
    "System": {"demo.load": "Sample data loaded"},
}
ACTION_WORDS = {
    action: label
    for group in ACTION_GROUPS.values()
    for action, label in group.items()
    if not action.endswith(".")
}


def action_words(action: str) -> str:
    """A recorded action in words (an action not listed, as it is)."""
    return ACTION_WORDS.get(action, action)


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
