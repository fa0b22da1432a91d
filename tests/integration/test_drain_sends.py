"""An event drain sends the few deliveries its batch asked for itself, once it commits, and a
delivery drain takes over any whose sender died before sending."""

import threading
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select, update

from engine import runtime
from engine.delivery import LEASE
from engine.execution import apply, drains, signals
from engine.models import Delivery, DeliveryStatus, utcnow
from tests.channels import post_event

THANKS = {
    "schema": "throughline.journey/v1",
    "name": "Thanks",
    "entry": {"reentry": "always", "max_entries": None},
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"event": "order_completed"}},
        {
            "id": "thanks",
            "type": "send",
            "config": {"channel": "email", "message": {"subject": "Thanks"}},
        },
        {"id": "end", "type": "exit", "config": {}},
    ],
    "edges": [{"from": "start", "to": "thanks"}, {"from": "thanks", "to": "end"}],
}
ORDER = {"type": "order_completed", "customer": {"id": "c-1"}}


def _post(world, body=ORDER):
    response = post_event(world.client, "web", world.secrets["web"], body)
    assert response.status_code == 202


def _work(redis, *queues):
    SimpleWorker(list(queues), connection=redis, serializer=JSONSerializer).work(
        burst=True, with_scheduler=False, logging_level="WARNING"
    )


def test_an_event_drain_sends_its_batch_without_a_delivery_drain(world):
    world.publish(THANKS)
    _post(world)
    _work(world.redis, signals.events_queue(world.redis))
    assert len(world.recorders["email"].delivered()) == 1
    assert signals.deliveries_queue(world.redis).count == 0  # no second hop
    [delivery] = world.deliveries()
    assert delivery.status is DeliveryStatus.delivered
    assert delivery.attempts == 1


def test_a_delivery_drain_sends_what_a_dead_drain_leased(world):
    world.publish(THANKS)
    _post(world)
    rt = runtime.current()
    for partition in range(rt.settings.partitions):
        # the drain commits its batch, then its worker dies before sending
        apply.drain_partition(rt.database, partition, lambda *_: None, send_up_to=64)
    [delivery] = world.deliveries()
    assert delivery.status is DeliveryStatus.pending and delivery.attempts == 1
    assert delivery.next_attempt_at > utcnow() + LEASE - timedelta(seconds=10)
    email = world.session.scalar(select(Delivery.channel_id))
    assert drains.drain_deliveries(rt, email) == {}  # leased: not due yet
    world.session.execute(
        update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    world.session.commit()
    assert drains.drain_deliveries(rt, email) == {"delivered": 1}
    world.session.expire_all()
    [delivery] = world.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.delivered, 2)
    assert len(world.recorders["email"].delivered()) == 1


def test_with_sending_from_drains_off_a_delivery_drain_sends(world):
    world.publish(THANKS)
    rt = runtime.current()
    before = rt.settings
    rt.settings = replace(before, drain_sends_up_to=0)
    try:
        _post(world)
        _work(world.redis, signals.events_queue(world.redis))
        assert world.recorders["email"].delivered() == []
        assert signals.deliveries_queue(world.redis).count == 1
        _work(world.redis, signals.deliveries_queue(world.redis))
    finally:
        rt.settings = before
    assert len(world.recorders["email"].delivered()) == 1
    [delivery] = world.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.delivered, 1)


def test_a_batch_asking_for_more_than_a_drain_sends_leaves_them_to_delivery_drains(
    world,
):
    world.publish(THANKS)
    rt = runtime.current()
    before = rt.settings
    rt.settings = replace(before, drain_sends_up_to=2)
    try:
        for n in range(3):  # one customer: one partition, one batch
            _post(world, {**ORDER, "properties": {"n": n}})
        _work(world.redis, signals.events_queue(world.redis))
        assert world.recorders["email"].delivered() == []
        assert {d.attempts for d in world.deliveries()} == {0}
        _work(world.redis, signals.deliveries_queue(world.redis))
    finally:
        rt.settings = before
    assert len(world.recorders["email"].delivered()) == 3


@contextmanager
def _slow_channel(monkeypatch):
    """The channel answers once the test sets the event yielded, and a drain waits 0.05 s
    for it; at the end it answers, and what was sent is settled."""
    rt = runtime.current()
    send = drains.sender(rt)
    answered = threading.Event()
    original = type(send).attempt

    def slow(self, item, now, gates=None):
        answered.wait(10)
        return original(self, item, now, gates)

    monkeypatch.setattr(type(send), "attempt", slow)
    before = rt.settings
    rt.settings = replace(before, drain_sends_wait=0.05)
    try:
        yield answered
    finally:
        answered.set()
        drains._settler.submit(lambda: None).result(timeout=10)
        rt.settings = before


def test_a_slow_channel_is_settled_in_the_background_while_the_drain_goes_on(
    world, monkeypatch
):
    world.publish(THANKS)
    with _slow_channel(monkeypatch) as answered:
        _post(world)
        _work(world.redis, signals.events_queue(world.redis))
        [delivery] = world.deliveries()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.pending, 1)
        answered.set()  # the channel answers once the drain has moved on
    world.session.rollback()  # a new snapshot
    [delivery] = world.deliveries()
    assert delivery.status is DeliveryStatus.delivered
    assert len(world.recorders["email"].delivered()) == 1
    assert signals.deliveries_queue(world.redis).count == 0


def test_while_a_slow_channel_is_awaited_the_next_batch_leaves_its_sends_to_delivery_drains(
    world, monkeypatch
):
    world.publish(THANKS)
    with _slow_channel(monkeypatch):
        _post(world)
        _work(world.redis, signals.events_queue(world.redis))
        assert drains._late.outstanding()
        _post(world, {**ORDER, "customer": {"id": "c-2"}})
        _work(world.redis, signals.events_queue(world.redis))
        world.session.rollback()
        first, later = sorted(world.deliveries(), key=lambda d: d.created_at)
        assert (first.status, first.attempts) == (DeliveryStatus.pending, 1)
        assert (later.status, later.attempts) == (DeliveryStatus.pending, 0)
        assert signals.deliveries_queue(world.redis).count == 1
    assert not drains._late.outstanding()
    _work(world.redis, signals.deliveries_queue(world.redis))
    world.session.rollback()
    assert {d.status for d in world.deliveries()} == {DeliveryStatus.delivered}
    assert len(world.recorders["email"].delivered()) == 2


def test_a_send_that_could_outlast_its_lease_is_not_made_and_waits_for_the_lease(
    world, monkeypatch
):
    world.publish(THANKS)
    rt = runtime.current()
    # Every call's turn comes too late: one started now could end after the lease.
    monkeypatch.setattr(
        drains, "longest_call", lambda settings: LEASE.total_seconds() + 1
    )
    _post(world)
    _work(world.redis, signals.events_queue(world.redis))
    assert world.recorders["email"].delivered() == []
    [delivery] = world.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.pending, 1)
    assert delivery.next_attempt_at > utcnow() + LEASE - timedelta(seconds=10)
    assert not drains._late.outstanding()
    email = world.session.scalar(select(Delivery.channel_id))
    world.session.execute(
        update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    world.session.commit()
    assert drains.drain_deliveries(rt, email) == {"delivered": 1}
    assert len(world.recorders["email"].delivered()) == 1
