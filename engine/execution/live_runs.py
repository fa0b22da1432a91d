"""Runs in SQL: carry out what `runner.on_event` decides for an arriving event, start runs,
and advance waiting runs when their timer fires or their delivery settles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import transaction
from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.decisions import store as decision_store
from engine.execution import Effects, batch, rows
from engine.execution.documents import (
    LiveJourney,
    channels_by_slug,
    document_of,
    journey_of,
)
from engine.execution.persist import load_state, save_state, touch_channel
from engine.execution.runner import (
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
from engine.execution.writes import add_step, count_conversion, record
from engine.language.nodes import Resume
from engine.models import (
    IN_FLIGHT,
    Customer,
    JourneyStatus,
    Run,
    RunStatus,
)
from engine.policies import held_out
from engine.policies.gate import LiveGate
from engine.policies.store import current as current_policies
from engine.profiles import identity


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
    gate = LiveGate(
        session,
        run,
        customer_scope.get("traits") or {},
        document.max_sends_per_minute,
    )
    moved = advance(
        document,
        state,
        customer_scope,
        now,
        key,
        resume,
        hold_for_delivery=True,
        gate=gate,
        tables=lambda key: decision_store.live(session, key),
    )
    save_state(session, run, state, now)
    if run.id is None:
        session.flush()  # the steps and deliveries name the run
    if live:
        name, number = live.name, live.number
    else:
        name, number = journey_of(session, run.version_id)[1:]
    record(session, run, name, number, moved, customer_scope, effects, now, resumed_at)
    effects.runs_advanced += 1


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
            held=journey_of(session, run.version_id)[0] in (None, JourneyStatus.paused),
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
                save_state(session, run, state, now)
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
    run = rows.fresh(
        Run,
        id=batch.next_id(session, "runs"),
        journey_id=journey.journey_id,
        version_id=journey.version_id,
        customer_id=customer.id,
        status=RunStatus.active,
        current_node=state.node,
        context={},
        # The split branches it takes, counted when it converts (its steps may be gone).
        state={"branches": []},
        trigger_event_id=event_id,
        started_at=now,
        traceparent=transaction.of(session).trace,
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
    if held_out(
        current_policies(session), customer.id or _profile_id(session, customer)
    ):
        # Counted apart, for the comparison with everyone else (the cohort is kept even
        # if the holdout changes while the run is under way).
        run.state = {**run.state, "held_out": True}
        counters.add(
            session,
            Metric.HELD_OUT,
            now,
            journey_id=journey.journey_id,
            version_id=journey.version_id,
        )
    if customer.id is None:
        run.customer = customer  # inserted after the profile, by the session
    rows.add_run(session, run)  # inserted before the next query, already advanced
    batch.started(session, run)
    return run


def _profile_id(session: Session, customer: Customer) -> int | None:
    """A new profile's number, which only a flush gives it; asked only while a holdout is on."""
    if current_policies(session).holdout_percent:
        session.flush()
    return customer.id


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
            func.count(Run.id).filter(Run.status.in_(IN_FLIGHT)),
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
    state.held = None
    _advance(session, run, state, customer_scope, None, effects, now)
