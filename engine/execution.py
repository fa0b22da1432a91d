"""Runs in SQL: load a run's state, advance it with the runner, write steps and deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from engine import batch, steps, transaction
from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.language import graph
from engine.language.nodes import Await, Resume
from engine.models import (
    Channel,
    Customer,
    Delivery,
    Journey,
    JourneyStatus,
    JourneyVersion,
    Run,
    RunStatus,
    Step,
)
from engine.profiles import identity
from engine.runner import (
    Advance,
    Candidate,
    Converted,
    Entered,
    EntryHistory,
    Exited,
    Refused,
    Resumed,
    RunState,
    Underway,
    advance,
    on_event,
)

DELIVERY_DEADLINE = timedelta(hours=24)
# Which steps make a run count at their node, once per run and node (Metric.VISITED): as
# entered, as gone on from it (by a port, or by ending there complete) and as failed there.
NOT_ENTERING = frozenset({"converted", "exited"})
NOT_LEAVING = frozenset({"waiting", "failed", "converted", "exited", "not_entered"})
_documents: dict[int, graph.Document] = {}


def document_of(session: Session, version_id: int) -> graph.Document:
    """The parsed document of a published version (versions never change, so it is cached)."""
    found = _documents.get(version_id)
    if found is None:
        version = session.get(JourneyVersion, version_id)
        if version is None:
            raise LookupError(f"journey version {version_id} is gone")
        found = graph.parse(version.document)
        if len(_documents) > 5000:
            _documents.clear()
        _documents[version_id] = found
    return found


def forget_documents() -> None:
    """Empty the cache of parsed versions (for a process that switches databases)."""
    _documents.clear()


@dataclass(frozen=True)
class LiveJourney:
    journey_id: int
    name: str
    version_id: int
    number: int
    document: graph.Document


def live_journeys(session: Session) -> dict[str, list[LiveJourney]]:
    """Live journeys by the event type of their trigger."""
    rows = session.execute(
        select(Journey.id, Journey.name, JourneyVersion.id, JourneyVersion.number)
        .join(
            JourneyVersion,
            (JourneyVersion.journey_id == Journey.id)
            & (JourneyVersion.number == Journey.live_version),
        )
        .where(Journey.status == JourneyStatus.live)
    )
    found: dict[str, list[LiveJourney]] = {}
    for journey_id, name, version_id, number in rows:
        document = document_of(session, version_id)
        event = str(document.trigger().config.get("event"))
        found.setdefault(event, []).append(
            LiveJourney(journey_id, name, version_id, number, document)
        )
    return found


def _dump_await(awaiting: Await | None) -> dict[str, Any] | None:
    if awaiting is None:
        return None
    return {
        "event": awaiting.event,
        "where": awaiting.where,
        "timeout_at": awaiting.timeout_at.isoformat() if awaiting.timeout_at else None,
    }


def load_state(run: Run) -> RunState:
    saved = run.state
    awaiting = saved.get("awaiting")
    return RunState(
        node=run.current_node or "",
        status=run.status,
        trigger=saved.get("trigger", {}),
        event=saved.get("event", {}),
        entered_at=run.started_at,
        context=dict(run.context),
        wake_at=run.wake_at,
        awaiting=Await(
            awaiting["event"],
            awaiting.get("where"),
            datetime.fromisoformat(awaiting["timeout_at"])
            if awaiting.get("timeout_at")
            else None,
        )
        if awaiting
        else None,
        converted_at=run.converted_at,
        holding_delivery=bool(saved.get("holding_delivery")),
    )


def save_state(run: Run, state: RunState, now: datetime) -> None:
    if state.ended:  # an ended run waits for nothing (and leaves the due-runs index)
        state.wake_at, state.awaiting = None, None
    run.current_node = state.node
    run.status = state.status
    run.wake_at = state.wake_at
    run.awaiting_event = state.awaiting.event if state.awaiting else None
    run.context = state.context
    run.state = {
        "trigger": state.trigger,
        "event": state.event,
        "awaiting": _dump_await(state.awaiting),
        "holding_delivery": state.holding_delivery,
        "channels": (run.state or {}).get("channels", []),
        "counted": (run.state or {}).get("counted", {}),
    }
    run.converted_at = state.converted_at
    if state.ended and run.ended_at is None:
        run.ended_at = now
        session = object_session(run)
        if session is not None:
            counters.add(
                session,
                Metric.ENDED,
                now,
                journey_id=run.journey_id,
                version_id=run.version_id,
                label=state.status.value,
            )


def touch_channel(run: Run, slug: str | None) -> None:
    """Remember that the run met the customer on this channel (events in, messages out)."""
    if not slug:
        return
    seen = list((run.state or {}).get("channels", []))
    if slug not in seen:
        run.state = {**(run.state or {}), "channels": [*seen, slug]}


def add_step(
    session: Session,
    run: Run,
    node_id: str,
    node_type: str,
    outcome: str,
    detail: dict[str, Any],
    at: datetime,
    arrived: bool = True,
) -> None:
    """Write a step and count it for the journey's funnel (`arrived`: the run's first step
    at this node, not the continuation of a wait there)."""
    steps.add(session, run, node_id, node_type, outcome, detail, at)
    where: dict[str, Any] = {"journey_id": run.journey_id, "version_id": run.version_id}
    counters.add(session, Metric.STEP, at, node_id=node_id, label=outcome, **where)
    if arrived:
        counters.add(session, Metric.ARRIVED, at, node_id=node_id, **where)
    if node_type == "split":
        counters.add(
            session, Metric.BRANCH_ENTERED, at, node_id=node_id, label=outcome, **where
        )
    _count_once(session, run, node_id, outcome, at, where)


def _count_once(
    session: Session,
    run: Run,
    node_id: str,
    outcome: str,
    at: datetime,
    where: dict[str, Any],
) -> None:
    """Count the run at a node as entered, gone on or failed, each once however often it
    comes back (a loop, a move); the run keeps the nodes it has been counted at."""
    labels = []
    if outcome not in NOT_ENTERING:
        labels.append("entered")
    if outcome not in NOT_LEAVING:
        labels.append("completed")
    if outcome == "failed":
        labels.append("failed")
    counted: dict[str, list[str]] = (run.state or {}).get("counted", {})
    new = [label for label in labels if node_id not in counted.get(label, ())]
    if not new:
        return
    counted = {
        **counted,
        **{label: [*counted.get(label, []), node_id] for label in new},
    }
    run.state = {**(run.state or {}), "counted": counted}
    for label in new:
        counters.add(session, Metric.VISITED, at, node_id=node_id, label=label, **where)


def count_conversion(
    session: Session, run: Run, document: graph.Document, now: datetime
) -> None:
    """Count a conversion: time to goal, channels touched, and the split branches taken.

    Conversions are counted in the hour the run entered (its cohort), so a period's
    conversion rate is that of the runs that entered in it and never passes 100%.
    """
    cohort = run.started_at
    where: dict[str, Any] = {"journey_id": run.journey_id, "version_id": run.version_id}
    counters.add(session, Metric.CONVERTED, cohort, **where)
    took = (now - run.started_at).total_seconds()
    counters.add(
        session,
        Metric.TIME_TO_GOAL,
        cohort,
        label=counters.bucket_label(took, counters.TIME_TO_GOAL_BOUNDS),
        **where,
    )
    if len((run.state or {}).get("channels", [])) >= 2:
        counters.add(session, Metric.CROSS_CHANNEL, cohort, **where)
    if any(node.type == "split" for node in document.nodes):
        branches = session.execute(
            select(Step.node_id, Step.outcome)
            .where(Step.run_id == run.id, Step.node_type == "split")
            .distinct()
        )
        for node_id, port in branches:
            counters.add(
                session,
                Metric.BRANCH_CONVERTED,
                cohort,
                node_id=node_id,
                label=port,
                **where,
            )


@dataclass
class Effects:
    """What a transaction of engine work asks for once it commits."""

    delivery_channels: set[int] = field(default_factory=set)
    webhook_deliveries: bool = False
    runs_advanced: int = 0


def channels_by_slug(session: Session) -> dict[str, Channel]:
    """Channels by slug, read once per transaction (a batch of engine work)."""
    state = transaction.of(session)
    found = state.channels_by_slug
    if found is None:
        found = {c.slug: c for c in session.scalars(select(Channel))}
        state.channels_by_slug = found
    return found


def record(
    session: Session,
    run: Run,
    journey_name: str,
    version: int,
    moved: Advance,
    customer_scope: dict[str, Any],
    effects: Effects,
    now: datetime,
    resumed_at: str | None = None,
) -> None:
    """Write the steps and delivery rows an advance produced (`resumed_at`: the node the run
    was waiting at, whose first step continues that visit)."""
    for index, step in enumerate(moved.steps):
        arrived = not (index == 0 and step.node == resumed_at)
        add_step(
            session,
            run,
            step.node,
            step.type,
            step.outcome,
            step.detail,
            step.at,
            arrived,
        )
    if not (moved.sends or moved.webhooks):
        return
    channels = channels_by_slug(session)
    # A run parked on a delivery waits at the node that made it.
    held_node = run.current_node if run.state.get("holding_delivery") else None
    identifiers = {
        k: v
        for k, v in customer_scope.items()
        if k not in {"traits", "consent", "profile_id"}
    }
    journey = {"id": run.journey_id, "name": journey_name, "version": version}
    for send in moved.sends:
        channel = channels.get(send.channel)
        touch_channel(run, send.channel)
        for name in send.empty:
            counters.add(
                session,
                Metric.EMPTY,
                now,
                journey_id=run.journey_id,
                version_id=run.version_id,
                node_id=send.node,
                label=name,
            )
        delivery = Delivery(
            run=run,
            run_id=run.id,
            customer_id=run.customer_id,
            journey_id=run.journey_id,
            node_id=send.node,
            channel_id=channel.id if channel else None,
            kind="send",
            holds_run=send.node == held_node,
            payload={
                "body": {
                    "journey": journey,
                    "node": send.node,
                    "customer": {
                        **identifiers,
                        "traits": customer_scope.get("traits", {}),
                    },
                    "message": send.message,
                    "context": dict(run.context),
                },
                "channel": send.channel,
                "fallback_channel": send.fallback_channel,
            },
            next_attempt_at=now,
            deadline_at=now + DELIVERY_DEADLINE,
            created_at=now,
        )
        session.add(delivery)
        if channel:
            effects.delivery_channels.add(channel.id)
    for call in moved.webhooks:
        session.add(
            Delivery(
                run=run,
                run_id=run.id,
                customer_id=run.customer_id,
                journey_id=run.journey_id,
                node_id=call.node,
                url=call.url,
                kind="webhook",
                holds_run=call.node == held_node,
                payload={"body": call.body, "headers": call.headers},
                next_attempt_at=now,
                deadline_at=now + DELIVERY_DEADLINE,
                created_at=now,
            )
        )
        effects.webhook_deliveries = True


def _advance(
    session: Session,
    run: Run,
    state: RunState,
    customer_scope: dict[str, Any],
    resume: Resume | None,
    effects: Effects,
    now: datetime,
    live: LiveJourney | None = None,
) -> None:
    document = live.document if live else document_of(session, run.version_id)
    # Splits hash the customer's own id (as a simulation of that id does), not the profile number.
    key = str(customer_scope.get("id", run.customer_id))
    resumed_at = run.current_node if resume is not None else None
    moved = advance(
        document, state, customer_scope, now, key, resume, hold_for_delivery=True
    )
    save_state(run, state, now)
    if run.id is None:
        session.flush()  # the steps and deliveries name the run
    if live:
        name, number = live.name, live.number
    else:
        name, number = _journey_of(session, run.version_id)[1:]
    record(session, run, name, number, moved, customer_scope, effects, now, resumed_at)
    effects.runs_advanced += 1


def _journey_of(
    session: Session, version_id: int
) -> tuple[JourneyStatus | None, str, int]:
    """The status and name of a version's journey and the version's number, read once per
    transaction (a sweep advances hundreds of runs of the same few versions)."""
    known = transaction.of(session).versions_read
    found = known.get(version_id)
    if found is None:
        row = session.execute(
            select(Journey.status, Journey.name, JourneyVersion.number)
            .join(JourneyVersion, JourneyVersion.journey_id == Journey.id)
            .where(JourneyVersion.id == version_id)
        ).first()
        found = (row[0], row[1], row[2]) if row else (None, "", 0)
        known[version_id] = found
    return found


def _note(session: Session, run: Run, outcome: str, reason: str, now: datetime) -> None:
    document = document_of(session, run.version_id)
    node_type = document.node(run.current_node).type if run.current_node else "trigger"
    add_step(
        session,
        run,
        run.current_node or "",
        node_type,
        outcome,
        {"reason": reason},
        now,
        arrived=False,
    )


def react(
    session: Session,
    customer: Customer,
    runs: list[Run],
    event: dict[str, Any],
    event_id: int,
    live: dict[str, list[LiveJourney]],
    customer_scope: dict[str, Any],
    effects: Effects,
    now: datetime,
) -> None:
    """Carry out what an event does to the customer's runs under way and which runs it
    starts, in the order `runner.on_event` decides."""
    underway = [
        Underway(
            run,
            document_of(session, run.version_id),
            load_state(run),
            # a paused journey holds its runs where they are
            held=_journey_of(session, run.version_id)[0]
            in (None, JourneyStatus.paused),
        )
        for run in runs
    ]
    candidates = [
        Candidate(journey, journey.document)
        for journey in live.get(str(event.get("type")), [])
    ]
    channel = event.get("channel")
    for reaction in on_event(
        event,
        customer_scope,
        underway,
        candidates,
        lambda candidate: _history(session, candidate.key, customer),
        now,
    ):
        match reaction:
            case Exited(run=Underway(key=run, state=state), reason=reason):
                save_state(run, state, now)
                _note(session, run, "exited", reason, now)
            case Converted(run=Underway(key=run, document=document), reason=reason):
                run.converted_at = now
                touch_channel(run, channel)
                _note(session, run, "converted", reason, now)
                count_conversion(session, run, document, now)
            case Resumed(run=Underway(key=run, state=state), resume=resume):
                touch_channel(run, channel)
                _advance(session, run, state, customer_scope, resume, effects, now)
            case Entered(journey=Candidate(key=journey), state=state):
                run = _new_run(session, customer, journey, state, event, event_id, now)
                _advance(
                    session, run, state, customer_scope, None, effects, now, journey
                )
            case Refused():
                pass  # only a simulation shows who was kept out


def _new_run(
    session: Session,
    customer: Customer,
    journey: LiveJourney,
    state: RunState,
    event: dict[str, Any],
    event_id: int,
    now: datetime,
) -> Run:
    """A run of `journey` for `customer`, added to the session and counted as entered."""
    run = Run(
        id=batch.next_id(session, "runs"),
        customer=customer,
        journey_id=journey.journey_id,
        version_id=journey.version_id,
        customer_id=customer.id,
        status=RunStatus.active,
        current_node=state.node,
        context={},
        state={},
        trigger_event_id=event_id,
        started_at=now,
    )
    touch_channel(run, event.get("channel"))
    channel = channels_by_slug(session).get(str(event.get("channel")))
    counters.add(
        session,
        Metric.ENTERED,
        now,
        journey_id=journey.journey_id,
        version_id=journey.version_id,
        channel_id=channel.id if channel else 0,
    )
    session.add(run)  # inserted by the next flush, already advanced
    batch.started(session, run)
    return run


def _history(
    session: Session, candidate: LiveJourney, customer: Customer
) -> EntryHistory:
    """The customer's entries into a journey, read only when its entry rules need them."""
    entry = candidate.document.entry
    if (entry.reentry == "always" and entry.max_entries is None) or identity.is_new(
        session, customer
    ):
        return EntryHistory(0, False)
    prefetched = batch.entries_of(
        session,
        candidate.journey_id,
        customer.id,
        need_count=entry.reentry == "never" or entry.max_entries is not None,
    )
    if prefetched is not None:
        return EntryHistory(*prefetched)
    entries, active = session.execute(
        select(
            func.count(Run.id),
            func.count(Run.id).filter(
                Run.status.in_([RunStatus.active, RunStatus.waiting])
            ),
        ).where(Run.journey_id == candidate.journey_id, Run.customer_id == customer.id)
    ).one()
    return EntryHistory(entries, bool(active))


def resume_run(
    session: Session,
    run: Run,
    resume: Resume,
    customer_scope: dict[str, Any],
    effects: Effects,
    now: datetime,
) -> None:
    """Advance a waiting run because its timer fired or its delivery settled."""
    _advance(session, run, load_state(run), customer_scope, resume, effects, now)


def enter_node(
    session: Session,
    run: Run,
    node: str,
    customer_scope: dict[str, Any],
    effects: Effects,
    now: datetime,
) -> None:
    """Advance a run from `node` of its version as if it arrived there now (a run moved to
    another version): a wait starts now, an action is carried out."""
    state = load_state(run)
    state.node, state.status = node, RunStatus.active
    state.wake_at, state.awaiting, state.holding_delivery = None, None, False
    _advance(session, run, state, customer_scope, None, effects, now)
