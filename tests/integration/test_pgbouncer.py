"""Throughline behind PgBouncer in transaction mode (THROUGHLINE_PGBOUNCER=1): consecutive
transactions of one connection run on different server sessions, so nothing may be
prepared on, or left in, a session."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from engine.db import Database
from engine.models import Delivery, DeliveryStatus, Event, EventStatus
from tests.conftest import TEST_DATABASE_URL, make_settings
from tests.infrastructure import pgbouncer
from tests.world import CART, World, sample

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="PgBouncer pools PostgreSQL: this runs in the suite's PostgreSQL pass",
)


@pytest.fixture
def bounced_url(database_url):
    with pgbouncer(database_url, pool_size=2) as url:
        yield url


@pytest.fixture
def settings(tmp_path, bounced_url, redis_url, monkeypatch):
    monkeypatch.setenv("THROUGHLINE_PGBOUNCER", "1")
    return make_settings(tmp_path / "home", bounced_url, redis_url)


def test_the_same_statements_from_many_connections_through_two_server_sessions(
    bounced_url, monkeypatch
):
    # psycopg prepares a statement on the server after five runs; through the pooler the
    # next run may land on a session that has not prepared it (or already has).
    monkeypatch.setenv("THROUGHLINE_PGBOUNCER", "1")
    database = Database(bounced_url, pool_size=6)
    failures: list[str] = []

    def work() -> None:
        for number in range(40):
            try:
                with database.engine.begin() as connection:
                    assert (
                        connection.execute(
                            text("select :n + 1"), {"n": number}
                        ).scalar()
                        == number + 1
                    )
            except Exception as error:  # noqa: BLE001 - every failure is reported
                failures.append(repr(error))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.dispose()
    assert failures == []


def test_events_are_applied_and_delivered_through_the_pooler(
    client, session, settings, redis_client, recorders, engine_runtime
):
    world = World(client, session, settings, redis_client, recorders)
    world.publish(sample("cart_recovery"))
    for number in range(30):
        world.post(
            {
                **CART,
                "customer": {"id": f"c-{number}", "email": f"c{number}@example.com"},
            }
        )
    world.later(timedelta(hours=2))  # the journey waits an hour for an order first
    processed = session.scalar(
        select(func.count()).where(Event.status == EventStatus.processed)
    )
    delivered = session.scalar(
        select(func.count()).where(Delivery.status == DeliveryStatus.delivered)
    )
    assert processed == 30
    assert delivered == 30
    assert len(recorders["support-desk"].received) == 30
