"""Simulation: a sample customer and a timed list of events, run on a virtual clock.

Nothing is written and no channel is called: the same runner as live, with the effects
collected instead of carried out.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine import durations
from engine.execution.runner import (
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
from engine.language.graph import Document
from engine.language.nodes import Resume
from engine.models import RunStatus
from engine.policies import (
    NONE,
    MinuteSlots,
    Policies,
    Remembered,
    Verdict,
    decide,
)

MAX_EVENTS = 500
MAX_WAKEUPS = 2_000
HORIZON = timedelta(days=3 * 366)


class SimulationError(ValueError):
    """A simulation request that cannot be run; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TimedEvent:
    at: datetime
    event: dict[str, Any]


def _read_request(
    request: Any, clock: datetime
) -> tuple[dict[str, Any], list[TimedEvent]]:
    if not isinstance(request, dict):
        raise SimulationError("", "send an object {customer, events}")
    raw_customer = request.get("customer", {})
    if not isinstance(raw_customer, dict):
        raise SimulationError(
            "customer", 'customer is an object such as {"traits": {...}}'
        )
    traits = raw_customer.get("traits", {})
    if not isinstance(traits, dict):
        raise SimulationError(
            "customer.traits", "traits is an object of names to values"
        )
    consent = raw_customer.get("consent", {})
    if not isinstance(consent, dict):
        raise SimulationError(
            "customer.consent", "consent is an object of channel to true/false"
        )
    customer = {
        **{k: v for k, v in raw_customer.items() if k not in {"traits", "consent"}},
        "id": str(raw_customer.get("id", "simulated-customer")),
        "traits": copy.deepcopy(traits),
        "consent": dict(consent),
    }
    events = request.get("events", [])
    if not isinstance(events, list):
        raise SimulationError("events", "events is a list of {type, properties, after}")
    if len(events) > MAX_EVENTS:
        raise SimulationError("events", f"simulate at most {MAX_EVENTS} events at once")
    timed = []
    for index, item in enumerate(events):
        where = f"events[{index}]"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not item["type"]
        ):
            raise SimulationError(f"{where}.type", "each event needs a type")
        properties = item.get("properties", {})
        if not isinstance(properties, dict):
            raise SimulationError(f"{where}.properties", "properties is an object")
        event_traits = item.get("traits", {})
        if not isinstance(event_traits, dict):
            raise SimulationError(
                f"{where}.traits", "traits is an object of names to values"
            )
        after = item.get("after", "PT0S")
        try:
            durations.parse(after, allow_zero=True)
        except durations.DurationError as error:
            raise SimulationError(f"{where}.after", str(error)) from None
        clock = durations.add(clock, after)
        event = {
            "type": item["type"],
            "properties": copy.deepcopy(properties),
            "traits": copy.deepcopy(event_traits),
            "occurred_at": clock.isoformat(),
        }
        if isinstance(item.get("channel"), str):
            event["channel"] = item["channel"]
        timed.append(TimedEvent(clock, event))
    return customer, timed


class _Gate:
    """The brand-wide policies in a simulation: quiet hours and frequency caps, counted over
    the simulated sends (the holdout depends on a stored profile, so it is left out)."""

    def __init__(
        self, policies: Policies, customer: dict[str, Any], most: int | None
    ) -> None:
        self.policies, self.customer = policies, customer
        self.counts = Remembered()
        self.throttle = MinuteSlots(most) if most else None

    def decide(self, channel: str, now: datetime, held: str | None = None) -> Verdict:
        if self.policies.empty and self.throttle is None:
            return None
        self.counts.now = now
        traits = self.customer.get("traits") or {}
        return decide(
            self.policies, channel, None, traits, now, self.counts, self.throttle, held
        )


class _Simulation:
    def __init__(
        self,
        document: Document,
        customer: dict[str, Any],
        policies: Policies = NONE,
        tables: Callable[[str], Any] | None = None,
    ) -> None:
        self.document = document
        self.customer = customer
        self.gate = _Gate(policies, customer, document.max_sends_per_minute)
        self.tables = tables
        self.runs: list[RunState] = []
        self.steps: list[dict[str, Any]] = []
        self.sends: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.wakeups = 0

    def _record(self, number: int, moved: Advance) -> None:
        for step in moved.steps:
            self.steps.append(
                {
                    "run": number,
                    "node": step.node,
                    "type": step.type,
                    "at": step.at.isoformat(),
                    "outcome": step.outcome,
                    "detail": step.detail,
                }
            )
        at = moved.steps[-1].at.isoformat() if moved.steps else None
        for send in moved.sends:
            entry = {
                "run": number,
                "node": send.node,
                "channel": send.channel,
                "message": send.message,
                "at": at,
            }
            if send.fallback_channel:
                entry["fallback_channel"] = send.fallback_channel
            self.sends.append(entry)
        for call in moved.webhooks:
            self.webhooks.append(
                {
                    "run": number,
                    "node": call.node,
                    "url": call.url,
                    "body": call.body,
                    "at": at,
                }
            )

    def _note(
        self, number: int, state: RunState, at: datetime, outcome: str, reason: str
    ) -> None:
        node = self.document.node(state.node)
        self.steps.append(
            {
                "run": number,
                "node": node.id,
                "type": node.type,
                "at": at.isoformat(),
                "outcome": outcome,
                "detail": {"reason": reason},
            }
        )

    def fire_timers(self, until: datetime) -> None:
        while self.wakeups < MAX_WAKEUPS:
            due = [
                (state.wake_at, number, state)
                for number, state in enumerate(self.runs, 1)
                if state.status is RunStatus.waiting
                and state.wake_at is not None
                and state.wake_at <= until
            ]
            if not due:
                return
            at, number, state = min(due, key=lambda item: (item[0], item[1]))
            self.wakeups += 1
            self._record(
                number,
                advance(
                    self.document,
                    state,
                    self.customer,
                    at,
                    self.customer["id"],
                    Resume("timer"),
                    gate=self.gate,
                    tables=self.tables,
                ),
            )

    def deliver(self, timed: TimedEvent) -> None:
        event, at = timed.event, timed.at
        self.customer["traits"].update(
            event["traits"]
        )  # as a live event updates the profile
        underway = [
            Underway(number, self.document, state)
            for number, state in enumerate(self.runs, 1)
        ]
        journey = Candidate(None, self.document)
        for reaction in on_event(
            event, self.customer, underway, [journey], self._history, at
        ):
            match reaction:
                case Exited(run=run, reason=reason) | Converted(run=run, reason=reason):
                    outcome = "exited" if isinstance(reaction, Exited) else "converted"
                    self._note(run.key, run.state, at, outcome, reason)
                case Resumed(run=run, resume=resume):
                    moved = advance(
                        self.document,
                        run.state,
                        self.customer,
                        at,
                        self.customer["id"],
                        resume,
                        gate=self.gate,
                        tables=self.tables,
                    )
                    self._record(run.key, moved)
                case Refused(reason=reason):
                    self.steps.append(
                        {
                            "run": None,
                            "node": self.document.trigger().id,
                            "type": "trigger",
                            "at": at.isoformat(),
                            "outcome": "not_entered",
                            "detail": {"reason": reason},
                        }
                    )
                case Entered(state=state, rule=rule):
                    self.runs.append(state)
                    moved = advance(
                        self.document,
                        state,
                        self.customer,
                        at,
                        self.customer["id"],
                        gate=self.gate,
                        tables=self.tables,
                    )
                    if moved.steps:
                        moved.steps[0].detail.setdefault("rule", rule)
                    self._record(len(self.runs), moved)

    def _history(self, _journey: Candidate[None]) -> EntryHistory:
        return EntryHistory(
            entries=len(self.runs), active=any(not s.ended for s in self.runs)
        )

    def final(self) -> str:
        if not self.runs:
            return "not_entered"
        return (
            self.runs[-1].status.value
            if self.runs[-1].status is not RunStatus.active
            else "waiting"
        )


def simulate(
    document: Document,
    request: Any,
    clock: datetime,
    end: datetime | None = None,
    policies: Policies = NONE,
    tables: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Run `request` ({customer, events}) through `document` from `clock`; nothing is stored.

    Timers fire until `end` (default: three years after the last event). `policies`: the
    brand-wide ones the sends meet, as live. `tables`: the live decision tables by key.
    """
    customer, timeline = _read_request(request, clock)
    simulation = _Simulation(document, customer, policies, tables)
    for timed in timeline:
        simulation.fire_timers(timed.at)
        simulation.deliver(timed)
    last = timeline[-1].at if timeline else clock
    simulation.fire_timers(end or last + HORIZON)
    return {
        "steps": simulation.steps,
        "sends": simulation.sends,
        "webhooks": simulation.webhooks,
        "final": simulation.final(),
        "runs": [
            {
                "run": n,
                "status": s.status.value,
                "node": s.node,
                "converted": s.converted_at is not None,
                "wake_at": s.wake_at.isoformat() if s.wake_at else None,
            }
            for n, s in enumerate(simulation.runs, 1)
        ],
        "customer": {"traits": customer["traits"]},
        "started_at": clock.isoformat(),
    }
