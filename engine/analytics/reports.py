"""A journey's report for managers: funnel per step, conversions and uplift, channel figures and
time to goal, computed from the counters only (a sum of pre-aggregated rows, so a report costs
the same whether the journey has a thousand step records or ten million)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import sqrt
from statistics import NormalDist
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.analytics import counters, queries
from engine.analytics.counters import Metric
from engine.analytics.queries import Totals, Window
from engine.journeys import summaries
from engine.language import graph
from engine.language.nodes._words import edge_words
from engine.models import Channel, Journey, JourneyVersion

ENDED_HERE = ("completed", "failed", "exited", "erased")


NOT_PORTS = frozenset({"waiting", "converted", *ENDED_HERE})


ENDINGS = ("completed", "exited", "failed")


CONFIDENCE = 0.95


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class NodeFunnel:
    """A node's figures: runs that arrived, how they left (by port or by ending here)."""

    node_id: str
    node_type: str
    arrived: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    title: str = ""  # the step's label, else its type's name ("" once removed)
    label: str | None = None  # the marketer's own name for the step, if any
    summary: str = ""  # what the step does, in words
    config: Any = None  # the step's settings, for the words of its outputs

    @property
    def left(self) -> int:
        return sum(v for k, v in self.outcomes.items() if k not in NOT_PORTS)

    @property
    def ended(self) -> int:
        return sum(self.outcomes.get(k, 0) for k in ENDED_HERE)

    here: int = 0  # waiting or held here now, whatever the period

    @property
    def ways_on(self) -> list[tuple[str, int]]:
        """How runs left the step, in words: each output as its edge is written on the
        canvas ("went on", "yes", "timed out"), then how many ended here."""
        ports = [
            (
                "went on"
                if port == "out"
                else edge_words(self.node_type, self.config, port),
                n,
            )
            for port, n in sorted(self.outcomes.items())
            if port not in NOT_PORTS and n
        ]
        ended = [
            (f"{why} here", self.outcomes[why])
            for why in ENDED_HERE
            if self.outcomes.get(why)
        ]
        return ports + ended

    def settle_here(self, arrived_ever: int, outcomes_ever: dict[str, int]) -> None:
        """Runs that ever arrived and have neither left nor ended: they are here now."""
        ever = NodeFunnel(self.node_id, self.node_type, arrived_ever, outcomes_ever)
        self.here = max(ever.arrived - ever.left - ever.ended, 0)


@dataclass
class ChannelFigures:
    channel_id: int
    name: str
    delivered: int = 0
    failed: int = 0
    suppressed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latency: dict[str, int] = field(default_factory=dict)
    # Sends a policy held back for later (quiet hours, the send limit), by reason.
    held: dict[str, int] = field(default_factory=dict)

    @property
    def settled(self) -> int:
        return self.delivered + self.failed + self.suppressed

    @property
    def success_rate(self) -> float | None:
        return rate(self.delivered, self.delivered + self.failed)

    def latency_ms(self, share: float) -> float | None:
        return queries.percentile(self.latency, share)


@dataclass
class Uplift:
    """Conversion of the customers a split sent on, against its holdout branch."""

    node_id: str
    holdout_port: str
    treated: int
    treated_converted: int
    held: int
    held_converted: int

    @property
    def treated_rate(self) -> float | None:
        return rate(self.treated_converted, self.treated)

    @property
    def held_rate(self) -> float | None:
        return rate(self.held_converted, self.held)

    @property
    def difference(self) -> float | None:
        if self.treated_rate is None or self.held_rate is None:
            return None
        return self.treated_rate - self.held_rate

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% confidence interval of the difference (normal approximation)."""
        p1, p0 = self.treated_rate, self.held_rate
        if p1 is None or p0 is None:
            return None
        p1, p0 = min(max(p1, 0.0), 1.0), min(max(p0, 0.0), 1.0)
        spread = sqrt(p1 * (1 - p1) / self.treated + p0 * (1 - p0) / self.held)
        z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
        difference = p1 - p0
        return difference - z * spread, difference + z * spread

    @property
    def relative(self) -> float | None:
        """The difference as a share of the holdout's rate."""
        if self.difference is None or not self.held_rate:
            return None
        return self.difference / self.held_rate


def against_holdout(
    entered: int, converted: int, held: int, held_converted: int
) -> Uplift | None:
    """Everyone else's conversion against the global holdout's (None without holdout runs)."""
    if not held:
        return None
    return Uplift(
        "",
        "global holdout",
        treated=max(entered - held, 0),
        treated_converted=max(converted - held_converted, 0),
        held=held,
        held_converted=held_converted,
    )


@dataclass
class TrendPoint:
    at: datetime
    entered: int = 0
    converted: int = 0
    delivered: int = 0
    failed: int = 0


@dataclass
class JourneyReport:
    journey_id: int
    window: Window
    entered: int
    active: int
    completed: int
    exited: int
    failed: int
    converted: int
    cross_channel: int
    funnel: list[NodeFunnel]
    uplifts: list[Uplift]
    # The runs of customers in the brand's global holdout against everyone else's; None
    # when no customer of the holdout entered in the period.
    global_holdout: Uplift | None
    time_to_goal: list[tuple[str, int]]
    channels: list[ChannelFigures]
    trend: list[TrendPoint]
    granularity: str

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.converted, self.entered)


def _order(document: graph.Document | None, seen: set[str]) -> list[tuple[str, str]]:
    """Node ids and types from the trigger outwards, then any counted node no longer drawn."""
    ordered: list[tuple[str, str]] = []
    if document is not None:
        types = {node.id: node.type for node in document.nodes}
        starts = [node.id for node in document.nodes if node.type == "trigger"]
        queue, visited = deque(starts[:1]), set()
        while queue:
            node_id = queue.popleft()
            if node_id in visited or node_id not in types:
                continue  # a draft may have edges to steps that are gone
            visited.add(node_id)
            ordered.append((node_id, types[node_id]))
            queue.extend(edge.target for edge in document.edges_from(node_id))
        ordered += [(n.id, n.type) for n in document.nodes if n.id not in visited]
        # Exits read best at the end of the funnel, after every path leading to them.
        ordered.sort(key=lambda item: item[1] == "exit")
    drawn = {node_id for node_id, _ in ordered}
    return ordered + [(node_id, "") for node_id in sorted(seen - drawn) if node_id]


def latest_document(session: Session, journey: Journey) -> graph.Document | None:
    """The live version's document, else the newest version's, else the draft's."""
    number = journey.live_version
    statement = select(JourneyVersion.document).where(
        JourneyVersion.journey_id == journey.id
    )
    if number is not None:
        statement = statement.where(JourneyVersion.number == number)
    raw = session.scalar(statement.order_by(JourneyVersion.number.desc()).limit(1))
    try:
        return graph.parse(raw if raw is not None else journey.draft)
    except graph.DocumentError:
        return None


def _split_holdouts(document: graph.Document | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in document.nodes if document else ():
        if node.type != "split":
            continue
        for branch in node.config.get("branches") or []:
            if isinstance(branch, dict) and branch.get("holdout"):
                found[node.id] = str(branch.get("port"))
    return found


def channel_names(session: Session) -> dict[int, str]:
    names = dict(session.execute(select(Channel.id, Channel.name)).all())
    names[0] = "Webhook calls"
    return names


def journey_report(
    session: Session,
    journey: Journey,
    window: Window,
    granularity: str = "hour",
) -> JourneyReport:
    """Every figure of a journey's analytics page over `window`."""
    sums = queries.totals(session, journey.id, window)
    ever = queries.totals(
        session,
        journey.id,
        window,
        (Metric.ENTERED, Metric.ENDED, Metric.ARRIVED, Metric.STEP),
        dated=False,
    )

    def total(metric: str, label: str | None = None, source: Totals = sums) -> int:
        return sum(
            v
            for (m, _, _, found_label), v in source.items()
            if m == metric and (label is None or found_label == label)
        )

    document = latest_document(session, journey)
    funnel_by_node: dict[str, NodeFunnel] = {}
    for (metric, node_id, _, label), value in sums.items():
        if metric not in (Metric.ARRIVED, Metric.STEP):
            continue
        node = funnel_by_node.setdefault(node_id, NodeFunnel(node_id, ""))
        if metric == Metric.ARRIVED:
            node.arrived += value
        else:
            node.outcomes[label] = node.outcomes.get(label, 0) + value
    arrived_ever: dict[str, int] = {}
    outcomes_ever: dict[str, dict[str, int]] = {}
    for (metric, node_id, _, label), value in ever.items():
        if metric == Metric.ARRIVED:
            arrived_ever[node_id] = arrived_ever.get(node_id, 0) + value
        elif metric == Metric.STEP:
            found = outcomes_ever.setdefault(node_id, {})
            found[label] = found.get(label, 0) + value
    funnel = []
    seen = set(funnel_by_node) | set(arrived_ever)
    raw = graph.to_dict(document) if document else {}
    named = summaries.named_steps(session, raw)
    configs = {n["id"]: n.get("config") for n in raw.get("nodes", [])}
    for node_id, node_type in _order(document, seen):
        node = funnel_by_node.get(node_id, NodeFunnel(node_id, node_type))
        node.node_type, node.config = node_type, configs.get(node_id)
        if node_id in named:
            step = named[node_id]
            node.title, node.label, node.summary = step.title, step.label, step.summary
        node.settle_here(arrived_ever.get(node_id, 0), outcomes_ever.get(node_id, {}))
        funnel.append(node)

    uplifts = []
    for node_id, holdout in _split_holdouts(document).items():
        entered = {
            label: v
            for (m, n, _, label), v in sums.items()
            if m == Metric.BRANCH_ENTERED and n == node_id
        }
        converted = {
            label: v
            for (m, n, _, label), v in sums.items()
            if m == Metric.BRANCH_CONVERTED and n == node_id
        }
        uplifts.append(
            Uplift(
                node_id,
                holdout,
                treated=sum(v for k, v in entered.items() if k != holdout),
                treated_converted=sum(v for k, v in converted.items() if k != holdout),
                held=entered.get(holdout, 0),
                held_converted=converted.get(holdout, 0),
            )
        )

    to_goal: dict[str, int] = {}
    for (metric, _, _, label), value in sums.items():
        if metric == Metric.TIME_TO_GOAL:
            to_goal[label] = to_goal.get(label, 0) + value
    bounds = [*map(str, counters.TIME_TO_GOAL_BOUNDS), counters.OVER]
    time_to_goal = [(label, to_goal.get(label, 0)) for label in bounds]

    names = channel_names(session)
    channels: dict[int, ChannelFigures] = {}
    for (metric, _, channel_id, label), value in sums.items():
        if metric not in (Metric.DELIVERY, Metric.REASON, Metric.LATENCY, Metric.HELD):
            continue
        figures = channels.setdefault(
            channel_id,
            ChannelFigures(channel_id, names.get(channel_id, f"channel {channel_id}")),
        )
        if metric == Metric.DELIVERY and label in ("delivered", "failed", "suppressed"):
            setattr(figures, label, getattr(figures, label) + value)
        elif metric == Metric.REASON:
            figures.reasons[label] = figures.reasons.get(label, 0) + value
        elif metric == Metric.LATENCY:
            figures.latency[label] = figures.latency.get(label, 0) + value
        elif metric == Metric.HELD:
            figures.held[label] = figures.held.get(label, 0) + value

    entered_ever = total(Metric.ENTERED, source=ever)
    return JourneyReport(
        journey_id=journey.id,
        window=window,
        entered=total(Metric.ENTERED),
        active=max(entered_ever - total(Metric.ENDED, source=ever), 0),
        completed=total(Metric.ENDED, "completed"),
        exited=total(Metric.ENDED, "exited"),
        failed=total(Metric.ENDED, "failed"),
        converted=total(Metric.CONVERTED),
        cross_channel=total(Metric.CROSS_CHANNEL),
        funnel=funnel,
        uplifts=uplifts,
        global_holdout=against_holdout(
            total(Metric.ENTERED),
            total(Metric.CONVERTED),
            total(Metric.HELD_OUT),
            total(Metric.HELD_OUT_CONVERTED),
        ),
        time_to_goal=time_to_goal,
        channels=sorted(channels.values(), key=lambda c: c.name.lower()),
        trend=trend(session, journey.id, window, granularity),
        granularity=granularity,
    )


def trend(
    session: Session, journey_id: int, window: Window, granularity: str
) -> list[TrendPoint]:
    """Entered, converted and deliveries per hour or per day, gaps filled with zeros."""
    hours = queries.by_hour(
        session,
        journey_id,
        window,
        (Metric.ENTERED, Metric.CONVERTED, Metric.DELIVERY),
    )
    step = timedelta(days=1) if granularity == "day" else timedelta(hours=1)

    def slot(moment: datetime) -> datetime:
        moment = counters.hour_of(moment)
        return moment.replace(hour=0) if granularity == "day" else moment

    points: dict[datetime, TrendPoint] = {}
    for (bucket, metric, label), value in hours.items():
        point = points.setdefault(slot(bucket), TrendPoint(slot(bucket)))
        if metric == Metric.ENTERED:
            point.entered += value
        elif metric == Metric.CONVERTED:
            point.converted += value
        elif label == "delivered":
            point.delivered += value
        elif label == "failed":
            point.failed += value
    if not points:
        return []
    first = slot(window.since) if window.since else min(points)
    last = slot(window.until - timedelta(seconds=1)) if window.until else max(points)
    filled: list[TrendPoint] = []
    moment = first
    while moment <= last and len(filled) < 24 * 366:
        filled.append(points.get(moment, TrendPoint(moment)))
        moment += step
    return filled
