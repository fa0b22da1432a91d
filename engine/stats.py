"""Journey figures: runs by state, and per node how many entered, wait, went on or failed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from engine import counters
from engine.analytics import NOT_PORTS
from engine.counters import Metric
from engine.models import Journey, Run, RunStatus, Step, utcnow

NOT_LEAVING = ("waiting", "failed", "converted", "exited", "not_entered")
EMPTY_DAYS = 7  # how far back the counts of empty personalisation go


def journey_stats(session: Session, journey_id: int) -> dict[str, Any]:
    counts = dict(
        session.execute(
            select(Run.status, func.count())
            .where(Run.journey_id == journey_id)
            .group_by(Run.status)
        ).all()
    )
    converted = (
        session.scalar(
            select(func.count())
            .select_from(Run)
            .where(Run.journey_id == journey_id, Run.converted_at.is_not(None))
        )
        or 0
    )
    nodes: dict[str, dict[str, int]] = {}

    def node(node_id: str) -> dict[str, int]:
        return nodes.setdefault(
            node_id, {"entered": 0, "waiting": 0, "completed": 0, "failed": 0}
        )

    in_journey = select(Run.id).where(Run.journey_id == journey_id)
    visits = session.execute(
        select(Step.node_id, func.count(distinct(Step.run_id)))
        .where(
            Step.run_id.in_(in_journey), Step.outcome.not_in(["converted", "exited"])
        )
        .group_by(Step.node_id)
    )
    for node_id, runs in visits:
        node(node_id)["entered"] = runs
    left = session.execute(
        select(Step.node_id, func.count(distinct(Step.run_id)))
        .where(Step.run_id.in_(in_journey), Step.outcome.not_in(NOT_LEAVING))
        .group_by(Step.node_id)
    )
    for node_id, runs in left:
        node(node_id)["completed"] = runs
    failed = session.execute(
        select(Step.node_id, func.count(distinct(Step.run_id)))
        .where(Step.run_id.in_(in_journey), Step.outcome == "failed")
        .group_by(Step.node_id)
    )
    for node_id, runs in failed:
        node(node_id)["failed"] = runs
    waiting = session.execute(
        select(Run.current_node, func.count())
        .where(Run.journey_id == journey_id, Run.status == RunStatus.waiting)
        .group_by(Run.current_node)
    )
    for current, runs in waiting:
        if current:
            node(current)["waiting"] = runs
    return {
        "entered": sum(counts.values()),
        "active": counts.get(RunStatus.active, 0) + counts.get(RunStatus.waiting, 0),
        "completed": counts.get(RunStatus.completed, 0),
        "exited": counts.get(RunStatus.exited, 0),
        "failed": counts.get(RunStatus.failed, 0),
        "converted": converted,
        "nodes": nodes,
    }


# Figures for the canvas, from the counters (which are written with the work they count), so
# an open canvas polling them costs the same however long the journey's history.

DELIVERY_STATES = ("delivered", "suppressed", "failed")


def step_figures(session: Session, journey: Journey) -> dict[str, Any]:
    """Runs by state, and per node of every version: `entered` (arrivals), `waiting` there
    now, `completed` (went on by a port), `failed` there, and its deliveries by final state."""
    sums = counters.totals(
        session,
        journey.id,
        metrics=(
            Metric.ENTERED,
            Metric.ENDED,
            Metric.CONVERTED,
            Metric.ARRIVED,
            Metric.STEP,
            Metric.DELIVERY,
        ),
        dated=False,
    )
    nodes: dict[str, dict[str, Any]] = {}

    def node(node_id: str) -> dict[str, Any]:
        return nodes.setdefault(
            node_id,
            {
                "entered": 0,
                "waiting": 0,
                "completed": 0,
                "failed": 0,
                "deliveries": dict.fromkeys(DELIVERY_STATES, 0),
            },
        )

    totals = {"entered": 0, "ended": 0, "completed": 0, "converted": 0}
    for (metric, node_id, _channel, label), value in sums.items():
        if metric == Metric.ENTERED:
            totals["entered"] += value
        elif metric == Metric.ENDED:
            totals["ended"] += value
            totals["completed"] += value if label == "completed" else 0
        elif metric == Metric.CONVERTED:
            totals["converted"] += value
        elif not node_id:
            continue
        elif metric == Metric.ARRIVED:
            node(node_id)["entered"] += value
        elif metric == Metric.STEP and label not in NOT_PORTS:
            node(node_id)["completed"] += value
        elif metric == Metric.STEP and label == "failed":
            node(node_id)["failed"] += value
        elif metric == Metric.DELIVERY and label in DELIVERY_STATES:
            node(node_id)["deliveries"][label] += value
    for current, runs in session.execute(
        select(Run.current_node, func.count())
        .where(Run.journey_id == journey.id, Run.status == RunStatus.waiting)
        .group_by(Run.current_node)
    ):
        if current:
            node(current)["waiting"] = int(runs)
    for node_id, names in empty_names(session, journey.id).items():
        node(node_id)["empty"] = names
    return {
        "entered": totals["entered"],
        "active": max(totals["entered"] - totals["ended"], 0),
        "completed": totals["completed"],
        "converted": totals["converted"],
        "nodes": nodes,
    }


def empty_names(
    session: Session, journey_id: int, now: datetime | None = None
) -> dict[str, dict[str, int]]:
    """Per send step, how many of its messages printed each name empty in the last
    EMPTY_DAYS days: {"mail": {"customer.traits.first_name": 12}}."""
    since = (now or utcnow()) - timedelta(days=EMPTY_DAYS)
    found: dict[str, dict[str, int]] = {}
    sums = counters.totals(
        session, journey_id, counters.Window(since=since), metrics=(Metric.EMPTY,)
    )
    for (_metric, node_id, _channel, name), value in sorted(sums.items()):
        if value:
            found.setdefault(node_id, {})[name] = value
    return found


def empty_words(names: dict[str, int]) -> list[str]:
    """`{"customer.traits.first_name": 12}` as "12 messages had an empty {{ first_name }}
    in the last 7 days"."""
    return [
        f"{count:,} message{'' if count == 1 else 's'} had an empty "
        f"{{{{ {name.split('.')[-1]} }}}} in the last {EMPTY_DAYS} days"
        for name, count in sorted(names.items(), key=lambda item: -item[1])
    ]
