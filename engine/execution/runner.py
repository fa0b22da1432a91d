"""Advances one run through its journey version until it waits or ends.

The runner never touches the outside world or the clock: the caller passes `now`, and gets
back the steps taken and the effects to carry out (messages, webhook calls, profile changes).
The same code runs live (with rows of SQL) and in simulation (with a virtual clock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from engine import durations
from engine.language import nodes, rules
from engine.language.graph import Document
from engine.language.nodes import Await, ProfileChange, Resume, Send, WebhookCall
from engine.language.nodes.trigger import matches as trigger_matches
from engine.models import RunStatus
from engine.policies import THROTTLE, Held, Suppressed, Verdict

MAX_STEPS_PER_ADVANCE = 500


@dataclass
class RunState:
    """Where a run is and what it carries; persisted by the caller between advances."""

    node: str
    status: RunStatus
    trigger: dict[str, Any]
    event: dict[str, Any]
    entered_at: datetime
    context: dict[str, Any] = field(default_factory=dict)
    wake_at: datetime | None = None
    awaiting: Await | None = None
    converted_at: datetime | None = None
    holding_delivery: bool = False
    # Why the run waits at a send held by a policy (quiet_hours, throttle); asked again when
    # it wakes, except for a throttle, whose slot was kept for it.
    held: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in {RunStatus.completed, RunStatus.exited, RunStatus.failed}


@dataclass(frozen=True)
class StepRecord:
    node: str
    type: str
    at: datetime
    outcome: str
    detail: dict[str, Any]


@dataclass
class Advance:
    """What one advance did: the steps, and the effects the caller must carry out."""

    steps: list[StepRecord] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    webhooks: list[WebhookCall] = field(default_factory=list)
    profile_changes: list[ProfileChange] = field(default_factory=list)
    # Sends the brand-wide policies kept from being made, each with why.
    suppressed: list[tuple[Send, Suppressed]] = field(default_factory=list)


class SendGate(Protocol):
    """The brand-wide policies as a run's sends meet them (engine.policies)."""

    def decide(
        self, channel: str, now: datetime, held: str | None = None
    ) -> Verdict: ...


@dataclass(frozen=True)
class EntryHistory:
    """A customer's past with one journey: how many runs they started, whether one is live."""

    entries: int = 0
    active: bool = False


def scope(state: RunState, customer: dict[str, Any]) -> dict[str, Any]:
    """The names rules and templates see."""
    return {
        "trigger": state.trigger,
        "event": state.event,
        "customer": customer,
        "context": state.context,
    }


def event_scope(
    event: dict[str, Any], customer: dict[str, Any], state: RunState | None = None
) -> dict[str, Any]:
    return {
        "trigger": state.trigger if state else event,
        "event": event,
        "customer": customer,
        "context": state.context if state else {},
    }


def apply_profile_change(traits: dict[str, Any], change: ProfileChange) -> None:
    traits.update(change.set)
    for name in change.unset:
        traits.pop(name, None)
    for name, amount in change.increment.items():
        current = traits.get(name, 0)
        base = (
            current
            if isinstance(current, int | float) and not isinstance(current, bool)
            else 0
        )
        traits[name] = base + amount


def may_enter(document: Document, history: EntryHistory) -> rules.Verdict:
    """Whether the journey's entry rules let this customer start a new run."""
    entry = document.entry
    if history.active and entry.reentry != "always":
        return rules.Verdict(False, "already in this journey")
    if history.entries and entry.reentry == "never":
        return rules.Verdict(False, "entered before, and re-entry is never")
    if entry.max_entries is not None and history.entries >= entry.max_entries:
        return rules.Verdict(
            False, f"entered {history.entries} times, the most allowed"
        )
    return rules.Verdict(True, "entry allowed")


def entry_verdict(
    document: Document, event: dict[str, Any], customer: dict[str, Any]
) -> rules.Verdict:
    """Whether `event` matches the journey's trigger."""
    trigger = document.trigger()
    return trigger_matches(
        trigger.config, str(event.get("type")), event_scope(event, customer)
    )


def start(document: Document, event: dict[str, Any], now: datetime) -> RunState:
    """A new run at the trigger, to be advanced."""
    return RunState(
        node=document.trigger().id,
        status=RunStatus.active,
        trigger=event,
        event=event,
        entered_at=now,
    )


def exit_rule_matched(
    document: Document, event: dict[str, Any], state: RunState, customer: dict[str, Any]
) -> rules.Verdict | None:
    """The verdict of the first `exit_on` rule this event meets, or None."""
    for rule in document.exit_on:
        if rule.event != event.get("type"):
            continue
        if rule.where is None:
            return rules.Verdict(True, f"exit on {rule.event}")
        verdict = rules.evaluate(rule.where, event_scope(event, customer, state))
        if verdict.matched:
            return rules.Verdict(True, f"exit on {rule.event} where {verdict.reason}")
    return None


def goal_reached(
    document: Document,
    event: dict[str, Any],
    state: RunState,
    customer: dict[str, Any],
    now: datetime,
) -> bool:
    """Whether this event meets the goal within its window (a run converts once)."""
    goal = document.goal
    if (
        goal is None
        or state.converted_at is not None
        or goal.event != event.get("type")
    ):
        return False
    if goal.within and now > durations.add(state.entered_at, goal.within):
        return False
    return (
        goal.where is None
        or rules.evaluate(goal.where, event_scope(event, customer, state)).matched
    )


def awaited_event_arrived(
    state: RunState, event: dict[str, Any], customer: dict[str, Any]
) -> bool:
    awaiting = state.awaiting
    if state.status is not RunStatus.waiting or awaiting is None:
        return False
    if awaiting.event != event.get("type"):
        return False
    return (
        awaiting.where is None
        or rules.evaluate(awaiting.where, event_scope(event, customer, state)).matched
    )


RunKey = TypeVar("RunKey")
JourneyKey = TypeVar("JourneyKey")


@dataclass
class Underway(Generic[RunKey]):
    """A run under way, as the handling of an event sees it.

    `key` is the caller's own handle (a row, a number); `held` is a run whose journey is
    paused, which an event leaves where it is.
    """

    key: RunKey
    document: Document
    state: RunState
    held: bool = False


@dataclass(frozen=True)
class Candidate(Generic[JourneyKey]):
    """A live journey an event may start a run of (`key`: the caller's handle)."""

    key: JourneyKey
    document: Document


@dataclass(frozen=True)
class Exited(Generic[RunKey]):
    """An exit rule met: the run has ended (its state already says so)."""

    run: Underway[RunKey]
    reason: str


@dataclass(frozen=True)
class Converted(Generic[RunKey]):
    """The goal reached: the run converted (its state already says when) and goes on."""

    run: Underway[RunKey]
    reason: str


@dataclass(frozen=True)
class Resumed(Generic[RunKey]):
    """The event the run waited for arrived: the caller advances it with `resume`."""

    run: Underway[RunKey]
    resume: Resume


@dataclass(frozen=True)
class Entered(Generic[JourneyKey]):
    """The trigger matched and entry rules allow it: the caller advances the new `state`."""

    journey: Candidate[JourneyKey]
    state: RunState
    rule: str


@dataclass(frozen=True)
class Refused(Generic[JourneyKey]):
    """The trigger matched but the journey's entry rules keep the customer out."""

    journey: Candidate[JourneyKey]
    reason: str


Reaction = Exited[Any] | Converted[Any] | Resumed[Any] | Entered[Any] | Refused[Any]


def on_event(
    event: dict[str, Any],
    customer: dict[str, Any],
    runs: Iterable[Underway[RunKey]],
    journeys: Iterable[Candidate[JourneyKey]],
    history: Callable[[Candidate[JourneyKey]], EntryHistory],
    now: datetime,
) -> Iterator[Reaction]:
    """What one arriving event does, in order: for each run under way its exit rules, then
    its goal, then the event it awaits; then for each journey its trigger and entry rules.

    Live execution and simulation both drive this. It yields one reaction at a time and the
    caller carries each out (advancing a resumed or new run, writing its steps) before asking
    for the next, so `history` is asked after the runs under way have reacted, and only for
    a journey whose trigger matched.
    """
    kind = event.get("type")
    for run in runs:
        state = run.state
        if run.held or state.ended:
            continue
        exit_verdict = exit_rule_matched(run.document, event, state, customer)
        if exit_verdict is not None:
            state.status = RunStatus.exited
            yield Exited(run, exit_verdict.reason)
            continue
        if goal_reached(run.document, event, state, customer, now):
            state.converted_at = now
            yield Converted(run, f"goal {kind} reached")
        if awaited_event_arrived(state, event, customer):
            yield Resumed(run, Resume("event", event))
    for journey in journeys:
        verdict = entry_verdict(journey.document, event, customer)
        if not verdict.matched:
            continue
        allowed = may_enter(journey.document, history(journey))
        if not allowed.matched:
            yield Refused(journey, allowed.reason)
            continue
        yield Entered(journey, start(journey.document, event, now), verdict.reason)


def advance(
    document: Document,
    state: RunState,
    customer: dict[str, Any],
    now: datetime,
    customer_key: str,
    resume: Resume | None = None,
    hold_for_delivery: bool = False,
    gate: SendGate | None = None,
    tables: Callable[[str], Any] | None = None,
) -> Advance:
    """Move the run from its node until it waits or ends; `customer["traits"]` is updated in place.

    With `hold_for_delivery`, a send or webhook node that has an `error` edge parks the run
    until its delivery settles (resumed with kind "delivery" and event {"ok": bool, "reason"});
    without it (simulation), deliveries are taken to succeed.

    With `gate`, each send of a node not marked `transactional` meets the brand-wide policies:
    held (the run waits at the node, which runs again when its timer fires) or suppressed
    (the run leaves by the node's `suppressed` port if connected, else `out`).

    `tables` gives a decide step the live decision table of a key (engine.decisions.store).
    """
    result = Advance()
    if state.ended:
        return result
    if state.status is RunStatus.waiting:
        if resume is None:
            return result
        if resume.kind == "event" and resume.event is not None:
            state.event = dict(resume.event)
    # A run held for its journey's send limit keeps its minute only if woken within it: one
    # woken later (a paused journey, a late sweep) takes a new one, in line with the rest.
    if state.held == THROTTLE and (
        state.wake_at is None or now >= state.wake_at + timedelta(minutes=1)
    ):
        state.held = None
    state.status, state.wake_at, state.awaiting = RunStatus.active, None, None
    if resume is not None and resume.kind == "delivery":
        settled = dict(resume.event or {})
        port = "out" if settled.get("ok") else "error"
        node = document.node(state.node)
        state.holding_delivery, resume = False, None
        following = document.next_node(node.id, port)
        detail = {
            "reason": "delivered"
            if port == "out"
            else f"delivery failed: {settled.get('reason')}"
        }
        if following is None:
            state.status = RunStatus.completed
            result.steps.append(
                StepRecord(node.id, node.type, now, "completed", detail)
            )
            return result
        result.steps.append(StepRecord(node.id, node.type, now, port, detail))
        state.node = following
    for _ in range(MAX_STEPS_PER_ADVANCE):
        node = document.node(state.node)
        kind = nodes.get(node.type)
        ctx = nodes.RunContext(
            node.id,
            node.config,
            scope(state, customer),
            now,
            customer_key,
            resume,
            nodes.title(node.type, node.label),
            tables,
        )
        resume = None
        try:
            outcome = kind.run(ctx)
        except nodes.NodeError as error:
            handler = document.next_node(node.id, "error")
            detail = {"reason": str(error)}
            if handler is None:
                state.status = RunStatus.failed
                result.steps.append(
                    StepRecord(node.id, node.type, now, "failed", detail)
                )
                return result
            result.steps.append(StepRecord(node.id, node.type, now, "error", detail))
            state.node = handler
            continue
        held, state.held = state.held, None
        if gate is not None and outcome.sends and not node.config.get("transactional"):
            verdict = gate.decide(outcome.sends[0].channel, now, held)
            if isinstance(verdict, Held):
                state.status, state.wake_at = RunStatus.waiting, verdict.until
                state.held = verdict.reason
                detail = {
                    "reason": verdict.words,
                    "held": verdict.reason,
                    "until": verdict.until.isoformat(),
                    "channel": outcome.sends[0].channel,
                }
                result.steps.append(
                    StepRecord(node.id, node.type, now, "waiting", detail)
                )
                return result
            if isinstance(verdict, Suppressed):
                result.suppressed += [(send, verdict) for send in outcome.sends]
                port = (
                    "suppressed" if document.next_node(node.id, "suppressed") else "out"
                )
                detail = {
                    **outcome.detail,
                    "reason": verdict.words,
                    "suppressed": verdict.reason,
                }
                outcome = replace(outcome, sends=[], port=port, detail=detail)
        for name, kept in outcome.context.items():
            state.context = {
                **state.context,
                name: {**state.context.get(name, {}), **kept},
            }
        result.sends += outcome.sends
        result.webhooks += outcome.webhooks
        if outcome.profile is not None:
            customer.setdefault("traits", {})
            apply_profile_change(customer["traits"], outcome.profile)
            result.profile_changes.append(outcome.profile)
        holds = hold_for_delivery and (outcome.sends or outcome.webhooks)
        if holds and document.next_node(node.id, "error") is not None:
            state.status, state.holding_delivery = RunStatus.waiting, True
            detail = {**outcome.detail, "waiting": "for the delivery to settle"}
            result.steps.append(StepRecord(node.id, node.type, now, "waiting", detail))
            return result
        if outcome.waits:
            state.status = RunStatus.waiting
            state.awaiting = outcome.awaits
            state.wake_at = outcome.wake_at or (
                outcome.awaits.timeout_at if outcome.awaits else None
            )
            result.steps.append(
                StepRecord(node.id, node.type, now, "waiting", outcome.detail)
            )
            return result
        following = document.next_node(node.id, outcome.port) if outcome.port else None
        if following is None and outcome.fallback is not None:
            following = document.next_node(node.id, outcome.fallback)
            if following is not None:
                outcome.detail["unconnected"] = outcome.port
                outcome.port = outcome.fallback
        if following is None:
            state.status = RunStatus.completed
            result.steps.append(
                StepRecord(node.id, node.type, now, "completed", outcome.detail)
            )
            return result
        result.steps.append(
            StepRecord(node.id, node.type, now, str(outcome.port), outcome.detail)
        )
        state.node = following
    state.status = RunStatus.failed
    result.steps.append(
        StepRecord(
            state.node,
            document.node(state.node).type,
            now,
            "failed",
            {"reason": f"more than {MAX_STEPS_PER_ADVANCE} steps at once"},
        )
    )
    return result
