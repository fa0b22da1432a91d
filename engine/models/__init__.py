"""The canonical data model: SQLAlchemy 2 typed models shared by web, worker and scheduler.

SQL is the source of truth. Every state a row can be in is one of the enums in `states`; each
enum's docstring says what its states mean. The tables are grouped by what they hold (accounts,
channels and their events, customers, journeys, runs with their steps and deliveries,
counters); everything is imported from `engine.models`, the path migrations and the rest of the
engine use.
"""

from __future__ import annotations

from engine.models.accounts import ApiToken, AuditEntry, User
from engine.models.base import (
    LARGEST_ID,
    Base,
    BigID,
    JSONDoc,
    UTCDateTime,
    enum_type,
    utcnow,
)
from engine.models.channels import Channel, Event, EventKey
from engine.models.counters import Counter
from engine.models.customers import Customer, Identity
from engine.models.decisions import DecisionTable, DecisionVersion
from engine.models.journeys import Journey, JourneyVersion, RunMove
from engine.models.policies import PolicySet, SendSlot
from engine.models.runs import Delivery, Run, Step, new_delivery_id
from engine.models.scheduling import PeriodicRun, SchedulerLease
from engine.models.schemas import EventSchema, EventSchemaVersion, SchemaViolation
from engine.models.states import (
    IN_FLIGHT,
    ChannelKind,
    DeliveryStatus,
    EventStatus,
    JourneyStatus,
    MoveStatus,
    Role,
    RunStatus,
)

__all__ = [
    "IN_FLIGHT",
    "ApiToken",
    "AuditEntry",
    "Base",
    "BigID",
    "Channel",
    "ChannelKind",
    "Counter",
    "Customer",
    "DecisionTable",
    "DecisionVersion",
    "Delivery",
    "DeliveryStatus",
    "Event",
    "EventKey",
    "EventSchema",
    "EventSchemaVersion",
    "EventStatus",
    "Identity",
    "JSONDoc",
    "Journey",
    "JourneyStatus",
    "JourneyVersion",
    "LARGEST_ID",
    "MoveStatus",
    "Role",
    "PeriodicRun",
    "PolicySet",
    "Run",
    "SchedulerLease",
    "RunMove",
    "RunStatus",
    "SchemaViolation",
    "SendSlot",
    "Step",
    "UTCDateTime",
    "User",
    "enum_type",
    "new_delivery_id",
    "utcnow",
]
