"""The live engine against a model: random journeys, customers, events and passing time.

The model is the simulator (engine/execution/simulate.py), which keeps no state of its own; the live
engine stores events, drains them, sweeps timers and writes runs, steps and deliveries in SQL.
For every customer, the runs, the path taken and every message must be the same in both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select

from engine import durations
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.db import Database
from engine.execution import Effects, documents, timers
from engine.execution.apply import drain_batch
from engine.execution.simulate import simulate
from engine.intake.contract import parse_event
from engine.intake.store import ToStore, store_events
from engine.journeys import lifecycle
from engine.language import graph
from engine.models import Base, Customer, Delivery, Identity, Run, RunStatus, Step
from tests.unit.test_runner_properties import EVENTS
from tests.unit.test_runner_properties import journeys as random_journeys

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CUSTOMERS = ["c-1", "c-2", "c-3"]
PARTITIONS = 4


def _build(database_url: str, encryption_key: str):
    class EngineMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.database = Database(database_url)
            documents.forget_documents()  # version ids start again in the emptied database
            with self.database.session() as session:
                for table in reversed(Base.metadata.sorted_tables):
                    session.execute(delete(table))
            self.clock = T0
            self.timeline: dict[str, list[tuple[datetime, dict]]] = {
                c: [] for c in CUSTOMERS
            }
            self.document: graph.Document | None = None
            self.journey_id = 0
            self.sequence = 0

        # Without loops, so every run ends or waits within the horizon in both (loops through
        # waits are covered by the runner's property test).
        @initialize(raw=random_journeys(allow_loops=False))
        def publish(self, raw: dict) -> None:
            box = SecretBox(encryption_key)
            with self.database.session() as session:
                self.channel_id = create_channel(
                    session, box, "web", "web", "web"
                ).channel.id
                for slug in ("email", "sms"):
                    create_channel(
                        session,
                        box,
                        slug,
                        slug,
                        "other",
                        outbound_url="https://example.com/in",
                    )
                ctx = lifecycle.check_context(session)
                journey, problems = lifecycle.create_journey(session, raw, ctx, None)
                assert problems == []
                lifecycle.publish(session, journey, ctx, None)
                self.journey_id = journey.id
            self.document = graph.parse(raw)

        def _fire_timers(self, until: datetime) -> None:
            """Advance due runs one wake time at a time, as the simulator does."""
            for _ in range(3000):
                with self.database.session(writer=True) as session:
                    first = session.scalar(
                        select(Run.wake_at)
                        .where(Run.status == RunStatus.waiting, Run.wake_at <= until)
                        .order_by(Run.wake_at)
                        .limit(1)
                    )
                    if first is None:
                        return
                    timers.sweep_due_runs(session, first, Effects())
            raise AssertionError("timers kept firing")

        @rule(
            customer=st.sampled_from(CUSTOMERS),
            kind=st.sampled_from(EVENTS),
            n=st.integers(0, 3),
            traits=st.sampled_from([{}, {"tier": "gold"}, {"tier": "silver", "n": 2}]),
        )
        def event(self, customer: str, kind: str, n: int, traits: dict) -> None:
            self._fire_timers(self.clock)
            body = {
                "type": kind,
                "customer": {"id": customer},
                "properties": {"n": n},
                "traits": traits,
            }
            self.sequence += 1
            with self.database.session(writer=True) as session:
                stored = store_events(
                    session.connection(),
                    self.channel_id,
                    [ToStore(f"m-{self.sequence}", body, parse_event(body))],
                    PARTITIONS,
                    self.clock,
                )
                drain_batch(session, stored[0].partition, Effects(), now=self.clock)
            self.timeline[customer].append(
                (self.clock, {"type": kind, "properties": {"n": n}, "traits": traits})
            )

        @rule(step=st.sampled_from(["PT1M", "PT10M", "PT1H", "PT6H", "P1D"]))
        def time_passes(self, step: str) -> None:
            self.clock = durations.add(self.clock, step)
            self._fire_timers(self.clock)

        def teardown(self) -> None:
            try:
                if self.document is not None:
                    self._compare()
            finally:
                self.database.dispose()

        def _compare(self) -> None:
            end = self.clock + timedelta(hours=12)
            self._fire_timers(end)
            assert self.document is not None
            with self.database.session() as session:
                for customer in CUSTOMERS:
                    events, previous = [], T0
                    for at, event in self.timeline[customer]:
                        events.append({**event, "after": durations_iso(at - previous)})
                        previous = at
                    model = simulate(
                        self.document,
                        {"customer": {"id": customer}, "events": events},
                        T0,
                        end,
                    )
                    identity = session.scalar(
                        select(Identity).where(
                            Identity.kind == "id", Identity.value == customer
                        )
                    )
                    if identity is None:
                        assert model["runs"] == [] and not events
                        continue
                    runs = list(
                        session.scalars(
                            select(Run)
                            .where(Run.customer_id == identity.customer_id)
                            .order_by(Run.id)
                        )
                    )
                    assert [(r.status.value, r.current_node) for r in runs] == [
                        (m["status"], m["node"]) for m in model["runs"]
                    ], customer
                    assert [r.converted_at is not None for r in runs] == [
                        m["converted"] for m in model["runs"]
                    ]
                    live_paths = [
                        [
                            (s.node_id, s.outcome)
                            for s in session.scalars(
                                select(Step)
                                .where(Step.run_id == r.id)
                                .order_by(Step.id)
                            )
                        ]
                        for r in runs
                    ]
                    model_paths = [
                        [
                            (s["node"], s["outcome"])
                            for s in model["steps"]
                            if s["run"] == m["run"]
                        ]
                        for m in model["runs"]
                    ]
                    assert live_paths == model_paths, customer
                    sent = session.scalars(
                        select(Delivery)
                        .where(Delivery.customer_id == identity.customer_id)
                        .order_by(Delivery.created_at, Delivery.id)
                    )
                    live_sends = sorted(
                        (
                            d.node_id,
                            d.payload.get("channel"),
                            str(d.payload["body"].get("message")),
                        )
                        for d in sent
                        if d.kind == "send"
                    )
                    model_sends = sorted(
                        (s["node"], s["channel"], str(s["message"]))
                        for s in model["sends"]
                    )
                    assert live_sends == model_sends, customer
                    traits = session.get(Customer, identity.customer_id).traits
                    assert traits == model["customer"]["traits"], customer

    return EngineMachine


def durations_iso(delta: timedelta) -> str:
    return f"PT{int(delta.total_seconds())}S"


def test_live_execution_matches_the_model(database_url, settings):
    """Hypothesis drives the machine above; its invariant asserts that every customer's runs,
    steps, sends and traits in SQL equal the simulated model's, and any mismatch fails here."""
    machine = _build(database_url, settings.encryption_key)
    run_state_machine_as_test(
        machine,
        settings=settings_for_machine(),
    )


def settings_for_machine():
    return settings(
        max_examples=25,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
