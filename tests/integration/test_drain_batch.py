"""A drain batch reads what its events need up front and writes everything in one flush."""

from cryptography.fernet import Fernet
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.execution import Effects, apply
from engine.journeys import lifecycle
from engine.models import (
    Customer,
    Event,
    EventStatus,
    Identity,
    Run,
    RunStatus,
    Step,
    utcnow,
)
from tests.world import sample


def _setup(session):
    box = SecretBox(Fernet.generate_key().decode())
    for slug in ("web", "email", "sms", "support-desk"):
        create_channel(session, box, slug, slug, "other")
    ctx = lifecycle.check_context(session)
    journey, _ = lifecycle.create_journey(session, sample(), ctx, None)
    lifecycle.publish(session, journey, ctx, None)
    session.commit()


def _store(session, *bodies):
    now = utcnow()
    for number, body in enumerate(bodies):
        session.add(
            Event(
                channel_id=1,
                webhook_id=f"w-{number}-{now.timestamp()}",
                type=body["type"],
                partition=0,
                payload=body,
                status=EventStatus.pending,
                occurred_at=now,
                received_at=now,
            )
        )
    session.commit()


def _drain(database):
    with database.session(writer=True) as session:
        result = apply.drain_batch(session, 0, Effects(), 200, careful=False)
    return result


def cart(**customer):
    return {
        "type": "cart_abandoned",
        "customer": customer,
        "properties": {"cart_value": 80},
    }


def test_one_batch_applies_many_events_with_a_bounded_number_of_statements(
    session, database
):
    _setup(session)
    _store(session, *[cart(id=f"c-{n}", email=f"c{n}@example.com") for n in range(100)])
    statements = []
    sa_event.listen(
        database.engine, "before_cursor_execute", lambda *a: statements.append(a[2])
    )
    result = _drain(database)
    assert result.processed == 100
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Run)) == 100
    assert session.scalar(select(func.count()).select_from(Identity)) == 200
    # Read up front and written in one flush: far fewer statements than events.
    assert len(statements) / 100 < 0.5, statements[:20]


def test_a_customer_named_twice_in_a_batch_is_one_profile_with_one_run(
    session, database
):
    _setup(session)
    _store(
        session,
        cart(id="c-1"),
        cart(
            id="c-1", email="one@example.com"
        ),  # a second identifier for the same person
        {"type": "order_completed", "customer": {"email": "one@example.com"}},
    )
    assert _drain(database).processed == 3
    session.expire_all()
    [customer] = session.scalars(select(Customer)).all()
    identities = {(i.kind, i.value) for i in session.scalars(select(Identity))}
    assert identities == {("id", "c-1"), ("email", "one@example.com")}
    # Re-entry waits for the first run to end: one run, converted by the order.
    [run] = session.scalars(select(Run)).all()
    assert run.customer_id == customer.id
    assert run.status is RunStatus.completed and run.converted_at is not None
    assert {e.customer_id for e in session.scalars(select(Event))} == {customer.id}


def test_a_merge_inside_a_batch_leaves_the_rest_of_the_batch_correct(session, database):
    _setup(session)
    _store(session, cart(id="a-1"), {"type": "opened", "customer": {"email": "b@x.io"}})
    _drain(database)
    _store(
        session,
        {
            "type": "seen",
            "customer": {"id": "a-1", "email": "b@x.io"},
        },  # merges the two
        {
            "type": "order_completed",
            "customer": {"email": "b@x.io"},
        },  # the merged run ends
        cart(email="b@x.io"),  # and may enter again, on the surviving profile
    )
    assert _drain(database).processed == 3
    session.expire_all()
    live = session.scalars(
        select(Customer).where(Customer.merged_into_id.is_(None))
    ).all()
    assert len(live) == 1
    runs = session.scalars(select(Run).order_by(Run.id)).all()
    assert [r.status for r in runs] == [RunStatus.completed, RunStatus.waiting]
    assert {r.customer_id for r in runs} == {live[0].id}
    outcomes = [s.outcome for s in session.scalars(select(Step).order_by(Step.id))]
    assert outcomes.count("converted") == 1


def test_waiting_runs_of_known_customers_resume_in_a_batch(session, database):
    _setup(session)
    _store(session, *[cart(id=f"k-{n}") for n in range(5)])
    _drain(database)
    _store(
        session,
        *[{"type": "order_completed", "customer": {"id": f"k-{n}"}} for n in range(5)],
    )
    assert _drain(database).processed == 5
    session.expire_all()
    runs = session.scalars(select(Run)).all()
    assert len(runs) == 5
    assert all(r.status is RunStatus.completed and r.converted_at for r in runs)


def test_entry_limits_hold_across_batches_and_within_one(session, database):
    box = SecretBox(Fernet.generate_key().decode())
    for slug in ("web", "email", "sms", "support-desk"):
        create_channel(session, box, slug, slug, "other")
    document = sample()
    document["entry"] = {"reentry": "never", "max_entries": None}
    ctx = lifecycle.check_context(session)
    journey, _ = lifecycle.create_journey(session, document, ctx, None)
    lifecycle.publish(session, journey, ctx, None)
    session.commit()
    _store(
        session,
        cart(id="n-1"),
        {"type": "order_completed", "customer": {"id": "n-1"}},
        cart(id="n-1"),  # same batch, after the run ended: never again
    )
    _drain(database)
    _store(session, cart(id="n-1"), cart(id="n-2"))  # a later batch: still never
    _drain(database)
    session.expire_all()
    runs = session.scalars(select(Run).order_by(Run.id)).all()
    assert len(runs) == 2
    assert runs[0].status is RunStatus.completed
