"""Erasure against a transaction that advances one of the profile's runs meanwhile: steps
name their run without a foreign key, so the erasure's order is what removes them."""

import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from engine.models import Customer, Run, Step, utcnow
from engine.profiles import privacy, read
from tests.conftest import TEST_DATABASE_URL
from tests.world import CART, sample

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="row locks: SQLite has one writer at a time"
)


def _blocked(database, pid):
    """Whether backend `pid` is waiting for a lock."""
    with database.engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"
                ),
                {"p": pid},
            ).scalar()
        )


def test_steps_a_run_gained_while_its_profile_was_erased_go_with_it(world, database):
    world.publish(sample())
    world.post(CART)
    ada = read.find(world.session, "id:c-42")
    ada_id = ada.id
    world.session.rollback()

    # Another transaction holds one of Ada's runs, as a drain or a sweep advancing it does.
    advancing = database.sessionmaker()
    run = advancing.scalars(
        select(Run).where(Run.customer_id == ada_id).with_for_update()
    ).first()
    advancing.execute(
        Step.__table__.insert().values(
            run_id=run.id,
            node_id="late",
            node_type="wait",
            outcome="waiting",
            detail={"reason": "a step written while the erasure waited"},
            at=utcnow(),
        )
    )
    run.current_node = "late"
    advancing.flush()

    erased: dict = {}

    def erase():
        with database.session(writer=True) as session:
            erased["pid"] = session.execute(text("SELECT pg_backend_pid()")).scalar()
            erased["counts"] = privacy.erase(
                session, session.get(Customer, ada_id), None
            )

    eraser = threading.Thread(target=erase)
    eraser.start()
    deadline = time.monotonic() + 10
    while not ("pid" in erased and _blocked(database, erased["pid"])):
        assert time.monotonic() < deadline, "the erasure never waited for the run"
        time.sleep(0.02)
    advancing.commit()  # the step commits while the erasure waits for the run
    advancing.close()
    eraser.join(10)
    assert not eraser.is_alive()

    with database.session() as session:
        left = session.scalar(
            select(func.count()).select_from(Step).where(Step.run_id == run.id)
        )
        assert left == 0
        assert session.get(Customer, ada_id) is None
    assert erased["counts"]["runs"] >= 1


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_an_erasure_chosen_as_a_deadlocks_victim_is_tried_again(
    world, database, monkeypatch
):
    world.publish(sample())
    world.post(CART)
    ada_id = read.find(world.session, "id:c-42").id
    world.session.rollback()
    real, attempts = privacy._lock, []

    def lock(session, ids):
        real(session, ids)
        attempts.append(list(ids))
        if len(attempts) == 1:  # as PostgreSQL breaks a deadlock: this statement fails
            raise OperationalError("SELECT ... FOR NO KEY UPDATE", {}, _Deadlock())

    monkeypatch.setattr(privacy, "_lock", lock)
    with database.session(writer=True) as session:
        counts = privacy.erase(session, session.get(Customer, ada_id), None)
    assert attempts[0] == attempts[1] == [ada_id]
    assert counts["runs"] == 1 and counts["steps"] > 0
    with database.session() as session:
        assert session.get(Customer, ada_id) is None
        assert session.scalar(select(func.count()).select_from(Step)) == 0
