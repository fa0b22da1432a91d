"""The canonical data model: SQLAlchemy 2 typed models shared by web, worker and scheduler.

SQL is the source of truth. Every state a row can be in is one of the enums below; each
enum's docstring says what its states mean.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy import Enum as SQLEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A JSON document: JSONB on PostgreSQL, JSON text elsewhere.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")
# Integer primary keys that may grow past 2**31 (SQLite only autoincrements INTEGER).
BigID = BigInteger().with_variant(Integer(), "sqlite")
# The largest value of an Integer column on PostgreSQL: a larger number names no row of one,
# and PostgreSQL refuses to compare it with one (a BigID holds up to 2**63 - 1).
LARGEST_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                "naive datetimes are not stored; pass an aware UTC datetime"
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        return (
            value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        )


def _enum(kind: type[enum.Enum]) -> SQLEnum:
    return SQLEnum(
        kind,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONDoc}


class Role(enum.StrEnum):
    """What a user may do; each role includes the ones before it.

    viewer: reads every page and the API. marketer: also edits, simulates, publishes and
    pauses journeys and changes customers. admin: also manages users, channels and secrets.
    """

    viewer = "viewer"
    marketer = "marketer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


class ChannelKind(enum.StrEnum):
    """Where a channel meets customers; informs icons and defaults, never behaviour."""

    web = "web"
    app = "app"
    email = "email"
    sms = "sms"
    chat = "chat"
    store = "store"
    support = "support"
    other = "other"


class JourneyStatus(enum.StrEnum):
    """draft: never published. live: entries open. paused: no entries, runs held.
    archived: hidden from the default list, no entries, runs ended."""

    draft = "draft"
    live = "live"
    paused = "paused"
    archived = "archived"


class EventStatus(enum.StrEnum):
    """pending: stored, not yet applied. processed: applied to profiles and runs.
    failed: could not be applied (the error says why); kept for inspection."""

    pending = "pending"
    processed = "processed"
    failed = "failed"


class RunStatus(enum.StrEnum):
    """active: being advanced now. waiting: parked at a wait node until `wake_at` or an
    awaited event. completed: reached an exit or a node with no way out. exited: ended by
    an `exit_on` rule, an erasure or an archive. failed: stopped by an error."""

    active = "active"
    waiting = "waiting"
    completed = "completed"
    exited = "exited"
    failed = "failed"


class MoveStatus(enum.StrEnum):
    """moving: a plan's runs are being moved, batch by batch. done: every run the plan names
    was moved (or had left its step before its turn)."""

    moving = "moving"
    done = "done"


class DeliveryStatus(enum.StrEnum):
    """pending: written, not yet attempted or waiting for a retry. delivered: the channel
    answered 2xx. failed: permanent error or retries exhausted. suppressed: not attempted,
    for the reason recorded (consent withdrawn, channel disabled, breaker open)."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"
    suppressed = "suppressed"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Stored in a sign-in session when it begins; raising it ends every earlier session.
    session_generation: Mapped[int] = mapped_column(default=0)

    # The attributes a sign-in session manager (Flask-Login) reads, kept free of web imports.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class Channel(Base):
    """A system that posts events to Throughline and receives its actions.

    Secrets are stored encrypted (see engine.crypto); during a rotation's grace period the
    previous inbound secret stays valid until `previous_inbound_expires_at`.
    """

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind))
    inbound_secret: Mapped[str] = mapped_column(Text)
    previous_inbound_secret: Mapped[str | None] = mapped_column(Text)
    previous_inbound_expires_at: Mapped[datetime | None]
    outbound_secret: Mapped[str] = mapped_column(Text)
    outbound_url: Mapped[str | None] = mapped_column(String(2048))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    rate_limit: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


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


class Event(Base):
    """An event received from a channel; (channel, webhook id) makes a repeat harmless."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("channel_id", "webhook_id"),
        Index("ix_events_pending", "status", "partition", "id"),
        Index("ix_events_channel_received", "channel_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE")
    )
    webhook_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    partition: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]]
    status: Mapped[EventStatus] = mapped_column(
        _enum(EventStatus), default=EventStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]

    # For the order of inserts within one flush (rows this one names are written first);
    # code reads and writes the id columns.
    customer: Mapped[Customer | None] = relationship(lazy="raise")


class Journey(Base):
    """A journey: an editable draft document plus the number of its live version."""

    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[JourneyStatus] = mapped_column(
        _enum(JourneyStatus), default=JourneyStatus.draft, index=True
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
        _enum(MoveStatus), default=MoveStatus.moving
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Run(Base):
    """One customer's way through one journey version."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_due", "status", "wake_at"),
        Index("ix_runs_customer", "customer_id", "status"),
        # The runs in a journey now, by status and node (the canvas reads them every 5 s).
        Index("ix_runs_journey_node", "journey_id", "status", "current_node"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    journey_id: Mapped[int] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE")
    )
    version_id: Mapped[int] = mapped_column(
        ForeignKey("journey_versions.id", ondelete="CASCADE")
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE")
    )
    status: Mapped[RunStatus] = mapped_column(
        _enum(RunStatus), default=RunStatus.active
    )
    current_node: Mapped[str | None] = mapped_column(String(100))
    wake_at: Mapped[datetime | None]
    awaiting_event: Mapped[str | None] = mapped_column(String(200))
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the runner needs between advances: the trigger and latest event, what it awaits.
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trigger_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # For the order of inserts within one flush (rows this one names are written first);
    # code reads and writes the id columns.
    customer: Mapped[Customer] = relationship(lazy="raise")


class Step(Base):
    """One node a run passed through, with the reason it went where it went."""

    __tablename__ = "steps"
    __table_args__ = (Index("ix_steps_run", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(100))
    node_type: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    # For the order of inserts within one flush (rows this one names are written first);
    # code reads and writes the id columns.
    run: Mapped[Run] = relationship(lazy="raise")


def new_delivery_id() -> str:
    return "dlv_" + uuid.uuid4().hex


class Delivery(Base):
    """An action toward a channel or URL; its id is the `webhook-id` of every attempt."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_customer", "customer_id", "created_at"),
        Index("ix_deliveries_channel_created", "channel_id", "created_at"),
        Index("ix_deliveries_channel_finished", "channel_id", "finished_at"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=new_delivery_id
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE")
    )
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE")
    )
    journey_id: Mapped[int | None] = mapped_column(
        ForeignKey("journeys.id", ondelete="SET NULL")
    )
    node_id: Mapped[str | None] = mapped_column(String(100))
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    url: Mapped[str | None] = mapped_column(String(2048))
    fallback_of_id: Mapped[str | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(16), default="send")
    holds_run: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]]
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.pending
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    # For the order of inserts within one flush (rows this one names are written first);
    # code reads and writes the id columns.
    run: Mapped[Run | None] = relationship(lazy="raise")
    customer: Mapped[Customer | None] = relationship(lazy="raise")


@event.listens_for(Delivery, "init")
def _delivery_id(_target: Delivery, _args: Any, kwargs: dict[str, Any]) -> None:
    """A delivery gets its id when it is made, not when it is inserted. With every key known,
    a flush inserts a batch's deliveries through one statement the driver prepares once; with
    the keys left to the column default, it built a statement of one VALUES group per row,
    different for every batch size, for the driver and the database to parse each time."""
    kwargs.setdefault("id", new_delivery_id())


class AuditEntry(Base):
    """Who changed what, when; written in the same transaction as the change."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action", "action", "at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


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
