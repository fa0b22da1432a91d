"""What an advance leaves in SQL: its steps, the deliveries it asks for, and conversions
counted once per run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import transaction
from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.decisions import store as decision_store
from engine.decisions.store import DECIDE
from engine.execution import Effects, rows
from engine.execution.documents import channels_by_slug
from engine.execution.persist import touch_channel
from engine.execution.runner import Advance
from engine.language import graph
from engine.models import DeliveryStatus, Run, Step, new_delivery_id

DELIVERY_DEADLINE = timedelta(hours=24)


# Which steps make a run count at their node, once per run and node (Metric.VISITED): as
# entered, as gone on from it (by a port, or by ending there complete) and as failed there.
NOT_ENTERING = frozenset({"converted", "exited"})


NOT_LEAVING = frozenset({"waiting", "failed", "converted", "exited", "not_entered"})


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
    rows.add_step(session, run, node_id, node_type, outcome, detail, at)
    where: dict[str, Any] = {"journey_id": run.journey_id, "version_id": run.version_id}
    counters.add(session, Metric.STEP, at, node_id=node_id, label=outcome, **where)
    if arrived:
        counters.add(session, Metric.ARRIVED, at, node_id=node_id, **where)
    if node_type == "split":
        counters.add(
            session, Metric.BRANCH_ENTERED, at, node_id=node_id, label=outcome, **where
        )
        _take_branch(run, node_id, outcome)
    _count_once(session, run, node_id, outcome, at, where)


def _take_branch(run: Run, node_id: str, port: str) -> None:
    """Keep the split branch on the run, to count it when the run converts. A run started
    before runs kept their branches has none kept: its steps say which it took."""
    taken = (run.state or {}).get("branches")
    if taken is None or [node_id, port] in taken:
        return
    run.state = {**run.state, "branches": [*taken, [node_id, port]]}


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
    if (run.state or {}).get("held_out"):
        counters.add(session, Metric.HELD_OUT_CONVERTED, cohort, **where)
    if any(node.type == "split" for node in document.nodes):
        branches = (run.state or {}).get("branches")
        if branches is None:
            branches = session.execute(
                select(Step.node_id, Step.outcome)
                .where(Step.run_id == run.id, Step.node_type == "split")
                .distinct()
            ).all()
        for node_id, port in branches:
            counters.add(
                session,
                Metric.BRANCH_CONVERTED,
                cohort,
                node_id=node_id,
                label=port,
                **where,
            )


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
        if step.detail.get("held"):  # a send held back by a policy, counted by channel
            channel = channels_by_slug(session).get(str(step.detail.get("channel")))
            counters.add(
                session,
                Metric.HELD,
                step.at,
                journey_id=run.journey_id,
                version_id=run.version_id,
                node_id=step.node,
                channel_id=channel.id if channel else 0,
                label=str(step.detail["held"]),
            )
        if step.type == DECIDE and "outcome" in step.detail:
            decision_store.count(
                session,
                str(step.detail["table"]),
                int(step.detail["version"]),
                str(step.detail["outcome"]),
                step.at,
                journey_id=run.journey_id,
            )
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
    if not (moved.sends or moved.webhooks or moved.suppressed):
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
    made = [(send, None) for send in moved.sends] + list(moved.suppressed)
    for send, kept in made:
        channel = channels.get(send.channel)
        if kept is None:
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
        _deliver(
            session,
            run,
            send.node,
            send.node == held_node and kept is None,
            now,
            channel_id=channel.id if channel else None,
            kind="send",
            transactional=send.transactional,
            suppressed=kept.reason if kept else None,
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
        )
        if channel and kept is None:
            effects.delivery_channels.add(channel.id)
    for call in moved.webhooks:
        _deliver(
            session,
            run,
            call.node,
            call.node == held_node,
            now,
            url=call.url,
            kind="webhook",
            payload={"body": call.body, "headers": call.headers},
        )
        effects.webhook_deliveries = True


def _deliver(
    session: Session,
    run: Run,
    node_id: str,
    holds_run: bool,
    now: datetime,
    kind: str,
    payload: dict[str, Any],
    channel_id: int | None = None,
    url: str | None = None,
    transactional: bool = False,
    suppressed: str | None = None,
) -> None:
    """Ask for a delivery of the run's, due now, with a day to succeed; or, `suppressed`
    for that reason by a brand-wide policy, record it as not made (and count it so)."""
    if run.id is None:
        session.flush()  # the delivery names the run
    if suppressed is not None:
        where: dict[str, Any] = {
            "journey_id": run.journey_id,
            "version_id": run.version_id,
            "node_id": node_id,
            "channel_id": channel_id or 0,
        }
        counters.add(session, Metric.DELIVERY, now, label="suppressed", **where)
        counters.add(session, Metric.REASON, now, label=suppressed, **where)
    rows.add_delivery(
        session,
        {
            "id": new_delivery_id(),
            "run_id": run.id,
            "customer_id": run.customer_id,
            "journey_id": run.journey_id,
            "node_id": node_id,
            "channel_id": channel_id,
            "url": url,
            "kind": kind,
            "holds_run": holds_run,
            "transactional": transactional,
            "payload": payload,
            "status": DeliveryStatus.suppressed
            if suppressed
            else DeliveryStatus.pending,
            "reason": suppressed,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": None if suppressed else now,
            "deadline_at": now + DELIVERY_DEADLINE,
            "finished_at": now if suppressed else None,
            "traceparent": transaction.of(session).trace,
        },
    )
