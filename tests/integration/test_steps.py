"""Steps are kept as rows until the session queries or commits, and a rollback forgets them."""

from cryptography.fernet import Fernet
from sqlalchemy import func, select

from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.execution import rows
from engine.journeys import lifecycle
from engine.models import Run, Step, utcnow
from tests.integration.test_drain_batch import _drain, _setup, _store, cart


def _a_run(session, database) -> Run:
    _setup(session)
    _store(session, cart(id="c-1"))
    _drain(database)
    return session.scalars(select(Run)).one()


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(Step))


def test_recorded_steps_are_seen_by_a_query_and_written_once(session, database):
    run = _a_run(session, database)
    before = _count(session)
    rows.add_step(session, run, "note", "exit", "looked", {"n": 1}, utcnow())
    rows.add_step(session, run, "note", "exit", "looked", {"n": 2}, utcnow())
    assert _count(session) == before + 2  # written before the query ran
    rows.add_step(session, run, "note", "exit", "looked", {"n": 3}, utcnow())
    session.commit()
    details = session.scalars(
        select(Step.detail).where(Step.outcome == "looked").order_by(Step.id)
    ).all()
    assert details == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_savepoint_rolled_back_forgets_only_its_own_steps(session, database):
    run = _a_run(session, database)
    before = _count(session)
    rows.add_step(session, run, "kept", "exit", "before", {}, utcnow())
    savepoint = session.begin_nested()
    rows.add_step(session, run, "gone", "exit", "inside", {}, utcnow())
    savepoint.rollback()
    savepoint = session.begin_nested()
    rows.add_step(session, run, "kept", "exit", "released", {}, utcnow())
    savepoint.commit()
    session.commit()
    outcomes = session.scalars(
        select(Step.outcome).where(Step.node_id.in_(["kept", "gone"])).order_by(Step.id)
    ).all()
    assert outcomes == ["before", "released"]
    assert _count(session) == before + 2


def test_a_rollback_forgets_unwritten_steps(session, database):
    run = _a_run(session, database)
    before = _count(session)
    rows.add_step(session, run, "gone", "exit", "never", {}, utcnow())
    session.rollback()
    session.commit()
    assert _count(session) == before


def test_a_batch_writing_more_steps_than_it_reserved_ids_for(session, database):
    box = SecretBox(Fernet.generate_key().decode())
    create_channel(session, box, "web", "web", "other")
    chain = [f"set_{n}" for n in range(9)]
    document = {
        "schema": "throughline.journey/v1",
        "name": "Long chain",
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"event": "cart_abandoned"}},
            *[
                {
                    "id": node,
                    "type": "update_profile",
                    "config": {"increment": {"visits": 1}},
                }
                for node in chain
            ],
            {"id": "end", "type": "exit", "config": {}},
        ],
        "edges": [
            {"from": a, "to": b}
            for a, b in zip(["start", *chain], [*chain, "end"], strict=True)
        ],
    }
    ctx = lifecycle.check_context(session)
    journey, problems = lifecycle.create_journey(session, document, ctx, None)
    assert problems == []
    lifecycle.publish(session, journey, ctx, None)
    session.commit()
    _store(session, *[cart(id=f"c-{n}") for n in range(60)])

    assert _drain(database).processed == 60

    session.rollback()
    assert _count(session) == 60 * 11  # more than the 8 a run reserves ids for
    assert session.scalar(select(func.count(func.distinct(Step.id)))) == 60 * 11
    per_run = session.execute(
        select(Step.run_id, func.count()).group_by(Step.run_id)
    ).all()
    assert len(per_run) == 60 and {count for _run, count in per_run} == {11}
