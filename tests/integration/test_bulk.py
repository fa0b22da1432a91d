"""Rows written in one statement (engine.bulk) read back as the ORM would have written them."""

from datetime import timedelta
from typing import cast

import pytest
from sqlalchemy import Table, select

from engine import bulk
from engine.models import Counter, Event, EventStatus, Step, utcnow
from tests.factories import make_customer
from tests.integration.test_steps import _a_run


def test_inserted_rows_keep_their_types(session, database):
    run = _a_run(session, database)
    at = utcnow()
    rows = [
        {
            "run_id": run.id,
            "node_id": f"n{n}",
            "node_type": "send",
            "outcome": "out",
            "detail": {"reason": "sent", "nested": {"n": n, "list": [1, "two"]}},
            "at": at + timedelta(seconds=n),
        }
        for n in range(3)
    ]
    assert (
        bulk.insert_rows(session.connection(), cast(Table, Step.__table__), rows) == 3
    )
    found = session.scalars(
        select(Step)
        .where(Step.run_id == run.id, Step.node_id.like("n_"))
        .order_by(Step.id)
    ).all()
    assert [step.node_id for step in found] == ["n0", "n1", "n2"]
    assert found[1].detail == {"reason": "sent", "nested": {"n": 1, "list": [1, "two"]}}
    assert found[2].at == at + timedelta(seconds=2)
    assert found[2].at.tzinfo is not None


def test_an_upsert_adds_to_existing_rows(session):
    table = cast(Table, Counter.__table__)
    bucket = utcnow().replace(minute=0, second=0, microsecond=0)
    key = {
        "journey_id": 1,
        "metric": "step",
        "bucket": bucket,
        "version_id": 1,
        "node_id": "a",
        "channel_id": 0,
        "label": "out",
        "shard": 3,
    }
    adding = (
        ["journey_id", "metric", "bucket", "version_id"]
        + ["node_id", "channel_id", "label", "shard"],
        {"value": "counters.value + excluded.value"},
    )
    connection = session.connection()
    bulk.insert_rows(connection, table, [{**key, "value": 2}], on_conflict=adding)
    bulk.insert_rows(
        connection,
        table,
        [{**key, "value": 5}, {**key, "node_id": "b", "value": 1}],
        on_conflict=adding,
    )
    values = dict(
        session.execute(
            select(Counter.node_id, Counter.value).where(Counter.shard == 3)
        ).all()
    )
    assert values == {"a": 7, "b": 1}


def test_updated_rows_change_only_the_rows_named(session, database):
    _a_run(session, database)  # a channel to name
    channel_customer = make_customer(session)
    now = utcnow()
    events = [
        Event(
            channel_id=1,
            webhook_id=f"bulk-{n}",
            type="seen",
            payload={"type": "seen"},
            occurred_at=now,
        )
        for n in range(3)
    ]
    session.add_all(events)
    session.flush()
    ids = [event.id for event in events]
    bulk.update_rows(
        session.connection(),
        cast(Table, Event.__table__),
        "id",
        [
            {
                "id": ids[0],
                "customer_id": channel_customer.id,
                "status": EventStatus.processed,
                "processed_at": now,
            },
            {
                "id": ids[2],
                "customer_id": None,
                "status": EventStatus.failed,
                "processed_at": now,
            },
        ],
    )
    session.expire_all()
    found = {e.id: e for e in session.scalars(select(Event).where(Event.id.in_(ids)))}
    assert found[ids[0]].status is EventStatus.processed
    assert found[ids[0]].customer_id == channel_customer.id
    assert found[ids[0]].processed_at == now
    assert found[ids[1]].status is EventStatus.pending
    assert found[ids[1]].processed_at is None
    assert found[ids[2]].status is EventStatus.failed


def test_rows_must_name_the_same_columns(session):
    table = cast(Table, Step.__table__)
    with pytest.raises(ValueError, match="same columns"):
        bulk.insert_rows(
            session.connection(),
            table,
            [{"run_id": 1, "node_id": "a"}, {"node_id": "b", "run_id": 1}],
        )
    with pytest.raises(ValueError, match="to set"):
        bulk.update_rows(session.connection(), table, "id", [{"id": 1}])


def _events(session, columns):
    """Events of channel 1, one per dict of the columns that set them apart, flushed."""
    events = [
        Event(
            channel_id=1,
            webhook_id=f"seen-{n}",
            type="seen",
            payload={"type": "seen"},
            occurred_at=utcnow(),
            **these,
        )
        for n, these in enumerate(columns)
    ]
    session.add_all(events)
    session.flush()
    return events


def test_an_update_with_a_condition_leaves_rows_that_no_longer_hold_it(
    session, database
):
    _a_run(session, database)
    events = _events(
        session,
        [
            {"status": EventStatus.failed if n == 1 else EventStatus.pending}
            for n in range(3)
        ],
    )
    changed = bulk.update_rows(
        session.connection(),
        cast(Table, Event.__table__),
        "id",
        [{"id": event.id, "status": EventStatus.processed} for event in events],
        where=("status", EventStatus.pending),
    )
    assert sorted(changed) == [events[0].id, events[2].id]
    session.expire_all()
    assert [session.get(Event, e.id).status for e in events] == [
        EventStatus.processed,
        EventStatus.failed,
        EventStatus.processed,
    ]


def test_rows_updated_by_id_and_partition_time_are_found_in_their_partition(
    session, database
):
    _a_run(session, database)
    now = utcnow()
    events = _events(
        session, [{"received_at": now - timedelta(days=40 * n)} for n in range(2)]
    )
    table = cast(Table, Event.__table__)
    rows = [
        {"id": e.id, "received_at": e.received_at, "status": EventStatus.processed}
        for e in events
    ]
    # two writes: on PostgreSQL, one statement of two parts
    bulk.write_all(
        session.connection(),
        [bulk.Write(table, [row], key="id", match=("received_at",)) for row in rows],
    )
    session.expire_all()
    assert {session.get(Event, e.id).status for e in events} == {EventStatus.processed}
    # the time names the row as much as the id does: a row given another time is not it
    changed = bulk.update_rows(
        session.connection(),
        table,
        "id",
        [{"id": events[0].id, "received_at": now - timedelta(days=1), "error": "x"}],
        match=("received_at",),
    )
    expected = [] if session.get_bind().dialect.name == "postgresql" else [events[0].id]
    assert changed == expected
