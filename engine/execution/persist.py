"""A run's state between advances: read from its row and written back to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.execution.runner import RunState
from engine.language.nodes import Await
from engine.models import (
    Run,
)


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
        held=saved.get("held"),
    )


def save_state(session: Session, run: Run, state: RunState, now: datetime) -> None:
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
        **_kept(run, "branches"),
        **({"held_out": True} if (run.state or {}).get("held_out") else {}),
        **({"held": state.held} if state.held else {}),
    }
    run.converted_at = state.converted_at
    if state.ended and run.ended_at is None:
        run.ended_at = now
        counters.add(
            session,
            Metric.ENDED,
            now,
            journey_id=run.journey_id,
            version_id=run.version_id,
            label=state.status.value,
        )


def _kept(run: Run, key: str) -> dict[str, Any]:
    """The run's `key` as saved, where it has one."""
    saved = run.state or {}
    return {key: saved[key]} if key in saved else {}


def touch_channel(run: Run, slug: str | None) -> None:
    """Remember that the run met the customer on this channel (events in, messages out)."""
    if not slug:
        return
    seen = list((run.state or {}).get("channels", []))
    if slug not in seen:
        run.state = {**(run.state or {}), "channels": [*seen, slug]}
