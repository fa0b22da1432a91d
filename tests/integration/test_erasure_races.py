"""Erasure against transactions that change the profile meanwhile: one that advances one of
its runs (steps name their run without a foreign key, so the erasure's order is what removes
them), and a merge that folds the profile into another."""

import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from engine.models import Customer, Identity, Role, Run, Step, utcnow
from engine.profiles import CustomerError, identity, privacy, read
from tests.conftest import TEST_DATABASE_URL
from tests.factories import api_client, csrf_token, login, make_customer, make_user
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


def _erased_while_held(database, holding, customer_id):
    """Erase `customer_id` in a thread while the session `holding` keeps its row locks, and
    commit `holding` once the erasure waits for them: what the erasure returned ("counts")
    or raised ("error")."""
    erased: dict = {}

    def erase():
        with database.session(writer=True) as session:
            erased["pid"] = session.execute(text("SELECT pg_backend_pid()")).scalar()
            customer = session.get(
                Customer, customer_id
            )  # read before `holding` commits
            try:
                erased["counts"] = privacy.erase(session, customer, None)
            except CustomerError as error:
                erased["error"] = error

    eraser = threading.Thread(target=erase, daemon=True)
    try:
        eraser.start()
        deadline = time.monotonic() + 10
        while not ("pid" in erased and _blocked(database, erased["pid"])):
            assert time.monotonic() < deadline, "the erasure never waited for the locks"
            time.sleep(0.02)
        holding.commit()  # what it wrote commits while the erasure waits
    finally:
        holding.rollback()  # on a failure above, the locks go and the erasure ends
        holding.close()
    eraser.join(10)
    assert not eraser.is_alive()
    return erased


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

    erased = _erased_while_held(database, advancing, ada_id)

    with database.session() as session:
        left = session.scalar(
            select(func.count()).select_from(Step).where(Step.run_id == run.id)
        )
        assert left == 0
        assert session.get(Customer, ada_id) is None
    assert erased["counts"]["runs"] >= 1


def test_a_profile_merged_away_while_its_erasure_waited_is_left_whole(world, database):
    world.publish(sample())
    world.post(CART)
    ada_id = read.find(world.session, "id:c-42").id
    bea_id = make_customer(world.session, identities={"email": "bea@example.com"}).id
    world.session.rollback()

    # A drain merging Ada into Bea (an event named both) holds both profiles.
    merging = database.sessionmaker()
    held = {c.id: c for c in identity._lock(merging, [ada_id, bea_id])}
    identity.merge_customers(merging, held[bea_id], [held[ada_id]], {"because": []})
    merging.flush()

    erased = _erased_while_held(database, merging, ada_id)

    error = erased["error"]
    assert error.status == 409
    assert f"merged into #{bea_id}" in str(error)
    with database.session() as session:
        assert session.get(Customer, ada_id).merged_into_id == bea_id
        values = set(
            session.scalars(
                select(Identity.value).where(Identity.customer_id == bea_id)
            )
        )
        assert {
            "c-42",
            "bea@example.com",
        } <= values  # nothing erased: Ada's went to Bea
        assert session.scalar(
            select(func.count()).select_from(Run).where(Run.customer_id == bea_id)
        )


_ERASE = privacy.erase


def _merging_first(database, monkeypatch, survivor_id):
    """Make each erasure find its profile merged into `survivor_id` by a merge that
    committed after the request read the profile (or, with None, erased by another)."""
    real = _ERASE

    def erase(session, customer, actor):
        with database.session(writer=True) as other:
            if survivor_id is None:
                real(other, other.get(Customer, customer.id), None)
            else:
                held = {
                    c.id: c for c in identity._lock(other, [customer.id, survivor_id])
                }
                identity.merge_customers(
                    other, held[survivor_id], [held[customer.id]], {"because": []}
                )
        return real(session, customer, actor)

    monkeypatch.setattr(privacy, "erase", erase)


def test_the_erase_page_and_api_say_a_merge_came_first_and_erase_nothing(
    app, client, world, database, monkeypatch
):
    world.publish(sample())
    world.post(CART)
    ada_id = read.find(world.session, "id:c-42").id
    bea_id = make_customer(world.session, identities={"email": "b@example.com"}).id
    _merging_first(database, monkeypatch, bea_id)

    admin = app.test_client()
    login(admin, make_user(world.session, Role.admin))
    token = csrf_token(admin, f"/customers/{ada_id}/erase")
    response = admin.post(f"/customers/{ada_id}/erase", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/customers/{bea_id}"
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Profile #{ada_id} was merged into #{bea_id}. Nothing was erased" in page
    with database.session() as session:
        assert session.get(Customer, ada_id).merged_into_id == bea_id
        assert session.scalar(
            select(func.count()).select_from(Identity).where(Identity.value == "c-42")
        )

    carl_id = make_customer(world.session, identities={"id": "c-7"}).id
    _merging_first(database, monkeypatch, bea_id)
    answer = api_client(client, world.session, Role.admin).delete(
        f"/api/v1/customers/{carl_id}"
    )
    assert answer.status_code == 409
    assert f"merged into #{bea_id}" in answer.get_json()["error"]["message"]
    with database.session() as session:
        assert (
            session.scalar(select(Identity.customer_id).where(Identity.value == "c-7"))
            == bea_id
        )

    # Two admins erase the same profile: the second is told it is gone.
    dan_id = make_customer(world.session, identities={"id": "c-8"}).id
    _merging_first(database, monkeypatch, None)
    token = csrf_token(admin, f"/customers/{dan_id}/erase")
    response = admin.post(f"/customers/{dan_id}/erase", data={"csrf_token": token})
    assert response.headers["Location"] == "/customers/"
    listing = admin.get("/customers/").get_data(as_text=True)
    assert f"Profile #{dan_id} was erased meanwhile." in listing


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
