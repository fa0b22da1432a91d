"""Journey figures for the API and the canvas, read from the counters and the runs in flight.

Counters are written with the work they count (engine.analytics.counters); the runs in flight are
counted by status and node through an index of their journey, status and node. No figure here
reads step records, so an open canvas polling them costs the same however long the journey's
history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from engine.analytics import queries
from engine.analytics.counters import Metric
from engine.analytics.reports import ENDINGS, NOT_PORTS
from engine.models import IN_FLIGHT, Journey, Run, RunStatus, utcnow

PER_RUN = ("entered", "completed", "failed")  # the labels of Metric.VISITED
DELIVERY_STATES = ("delivered", "suppressed", "failed")
EMPTY_DAYS = 7  # how far back the counts of empty personalisation go

InFlight = dict[tuple[RunStatus, str], int]


def _in_flight(session: Session, journey_id: int) -> InFlight:
    """Runs in the journey now, by status and the node they are at."""
    # A count per status reads its runs from the index in node order and adds them up as
    # they come; one count over both statuses gathers 100,000 waiting runs in a hash first.
    rows = session.execute(
        union_all(
            *(
                select(Run.status, Run.current_node, func.count())
                .where(Run.journey_id == journey_id, Run.status == status)
                .group_by(Run.status, Run.current_node)
                for status in IN_FLIGHT
            )
        )
    )
    return {(status, node or ""): int(runs) for status, node, runs in rows}


def _runs(sums: queries.Totals, in_flight: InFlight) -> dict[str, int]:
    """Runs that entered, are in the journey now, ended each way, and converted."""
    found = dict.fromkeys(("entered", "active", *ENDINGS, "converted"), 0)
    for (metric, _node, _channel, label), value in sums.items():
        if metric == Metric.ENTERED:
            found["entered"] += value
        elif metric == Metric.ENDED and label in ENDINGS:
            found[label] += value
        elif metric == Metric.CONVERTED:
            found["converted"] += value
    found["active"] = sum(in_flight.values())
    return found


def _waiting(in_flight: InFlight) -> dict[str, int]:
    return {
        node: runs
        for (status, node), runs in in_flight.items()
        if status is RunStatus.waiting and node
    }


def journey_stats(session: Session, journey_id: int) -> dict[str, Any]:
    """Runs by state, and per node how many runs entered it, wait there now, went on from it
    and failed there (each run counted once per node, however often it came back)."""
    sums = queries.totals(
        session,
        journey_id,
        metrics=(Metric.ENTERED, Metric.ENDED, Metric.CONVERTED, Metric.VISITED),
        dated=False,
    )
    in_flight = _in_flight(session, journey_id)
    nodes: dict[str, dict[str, int]] = {}

    def node(node_id: str) -> dict[str, int]:
        return nodes.setdefault(
            node_id, {"entered": 0, "waiting": 0, "completed": 0, "failed": 0}
        )

    for (metric, node_id, _channel, label), value in sums.items():
        if metric == Metric.VISITED and node_id and label in PER_RUN:
            node(node_id)[label] += value
    for node_id, runs in _waiting(in_flight).items():
        node(node_id)["waiting"] = runs
    return {**_runs(sums, in_flight), "nodes": nodes}


def step_figures(session: Session, journey: Journey) -> dict[str, Any]:
    """Runs by state, and per node of every version: `entered` (arrivals), `waiting` there
    now, `completed` (went on by a port), `failed` there, and its deliveries by final state."""
    sums = queries.totals(
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
    in_flight = _in_flight(session, journey.id)
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

    for (metric, node_id, _channel, label), value in sums.items():
        if not node_id:
            continue
        if metric == Metric.ARRIVED:
            node(node_id)["entered"] += value
        elif metric == Metric.STEP and label not in NOT_PORTS:
            node(node_id)["completed"] += value
        elif metric == Metric.STEP and label == "failed":
            node(node_id)["failed"] += value
        elif metric == Metric.DELIVERY and label in DELIVERY_STATES:
            node(node_id)["deliveries"][label] += value
    for node_id, runs in _waiting(in_flight).items():
        node(node_id)["waiting"] = runs
    for node_id, names in empty_names(session, journey.id).items():
        node(node_id)["empty"] = names
    totals = _runs(sums, in_flight)
    return {
        **{key: totals[key] for key in ("entered", "active", "completed", "converted")},
        "nodes": nodes,
    }


def empty_names(
    session: Session, journey_id: int, now: datetime | None = None
) -> dict[str, dict[str, int]]:
    """Per send step, how many of its messages printed each name empty in the last
    EMPTY_DAYS days: {"mail": {"customer.traits.first_name": 12}}."""
    since = (now or utcnow()) - timedelta(days=EMPTY_DAYS)
    found: dict[str, dict[str, int]] = {}
    sums = queries.totals(
        session, journey_id, queries.Window(since=since), metrics=(Metric.EMPTY,)
    )
    for (_metric, node_id, _channel, name), value in sorted(sums.items()):
        if value:
            found.setdefault(node_id, {})[name] = value
    return found


def empty_words(names: dict[str, int]) -> list[str]:
    """`{"customer.traits.first_name": 12}` as "12 messages had an empty [first_name] in
    the last 7 days" (a name as a step's summary shows it: `templates.gist`)."""
    return [
        f"{count:,} message{'' if count == 1 else 's'} had an empty "
        f"[{name.split('.')[-1]}] in the last {EMPTY_DAYS} days"
        for name, count in sorted(names.items(), key=lambda item: -item[1])
    ]
