"""What engine code keeps for the length of one database transaction, in one typed place.

A drain batch, a timer sweep or a delivery drain applies many events or runs in one
transaction. Along the way the engine keeps what it has read once (the batch's customers and
runs, journey versions, channels, the deliveries it settles) and what it will write at the end
(step rows, counter additions). All of it lives in one `TransactionState` on the session,
and its life follows the transaction:

- before a query of the ORM, the steps recorded so far are inserted, as autoflush shows new
  objects (`Database` binds this and the rest on the sessions it makes);
- before commit, the steps are inserted, then the counter tally is written as one upsert;
- a savepoint rolled back forgets the steps and counter additions recorded within it, and the
  batch read ahead (the event that failed may have changed what it holds);
- a commit or a rollback of the whole transaction resets the state: locks are released and the
  next transaction reads afresh. Only the session's counter shard carries over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, SessionTransaction

from engine.models import Channel, Customer, Delivery, JourneyStatus, Run

if TYPE_CHECKING:
    from engine.analytics.counters import Tally
    from engine.execution.batch import Batch

# A step's run, its row, and the transaction (or savepoint) it was recorded in.
PendingStep = tuple[Run, dict[str, Any], SessionTransaction | None]
# A new run, or a delivery's row, and the transaction (or savepoint) it was recorded in.
PendingRun = tuple[Run, SessionTransaction | None]
PendingCustomer = tuple[Customer, SessionTransaction | None]
PendingDelivery = tuple[dict[str, Any], SessionTransaction | None]
PendingIdentity = tuple[dict[str, Any], SessionTransaction | None]
KEY = "throughline"


@dataclass
class TransactionState:
    """The engine's reads and pending writes in the session's current transaction."""

    # Read ahead by a drain batch or a sweep (engine.execution.batch); None: read as you go.
    batch: Batch | None = None
    # Journey status, name and version number by version id (engine.execution).
    versions_read: dict[int, tuple[JourneyStatus | None, str, int]] = field(
        default_factory=dict
    )
    # Every channel by slug, read once (engine.execution).
    channels_by_slug: dict[str, Channel] | None = None
    # One value per identifier kind of the profiles read or created (engine.profiles.identity).
    identifiers: dict[int, dict[str, str]] = field(default_factory=dict)
    # The profiles the last identity resolution created (engine.profiles.identity).
    new_customers: set[int] = field(default_factory=set)
    # Runs read and locked with the deliveries that hold them (engine.delivery).
    held_runs: set[int] = field(default_factory=set)
    # The version of each run whose deliveries are settled (engine.delivery).
    run_versions: dict[int, int] = field(default_factory=dict)
    # The settled deliveries and held runs, kept alive until commit (engine.delivery).
    loaded_deliveries: tuple[list[Delivery], list[Run]] | None = None
    # Counter additions to write before commit (engine.analytics.counters).
    tally: Tally | None = None
    # Rows to insert before the next query or the commit (engine.execution.rows): the
    # profiles and identities created, the runs started, the deliveries asked for and the
    # steps taken.
    customers: list[PendingCustomer] = field(default_factory=list)
    identities: list[PendingIdentity] = field(default_factory=list)
    steps: list[PendingStep] = field(default_factory=list)
    runs: list[PendingRun] = field(default_factory=list)
    deliveries: list[PendingDelivery] = field(default_factory=list)
    # Sends counted against each frequency cap, by profile, policies revision and cap
    # (engine.policies.gate).
    cap_counts: dict[tuple[int, int, int], int] = field(default_factory=dict)
    # The trace context of what is being applied now (the event, or the run a timer woke):
    # the runs, steps and deliveries it causes carry it (engine.tracing).
    trace: str | None = None
    # Which counter rows this session writes to; kept across transactions (engine.analytics.counters).
    counter_shard: int = 0


def of(session: Session) -> TransactionState:
    """The state of the session's current transaction (created on first use)."""
    found: TransactionState | None = session.info.get(KEY)
    if found is None:
        found = session.info[KEY] = TransactionState()
    return found


def peek(session: Session) -> TransactionState | None:
    """The state if anything has been kept yet, without creating it."""
    found: TransactionState | None = session.info.get(KEY)
    return found


def reset(session: Session) -> None:
    """Forget everything kept for the transaction that ended (the counter shard stays)."""
    found = peek(session)
    if found is not None:
        session.info[KEY] = TransactionState(counter_shard=found.counter_shard)
