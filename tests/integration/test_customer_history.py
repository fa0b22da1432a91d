"""The engine's reading of a profile: timeline cursor, erasure counts, search, redaction."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import audit
from engine.models import (
    AuditEntry,
    Channel,
    ChannelKind,
    Customer,
    Delivery,
    Event,
    utcnow,
)
from engine.profiles import CustomerError, identity, privacy, read
from tests.factories import make_customer
from tests.world import CART, sample


@pytest.fixture
def crowded(session):
    """A profile with events, deliveries and notes, many of them at one instant."""
    at = utcnow()
    channel = Channel(
        slug="web",
        name="Web",
        kind=ChannelKind.web,
        inbound_secret="x",
        outbound_secret="x",
    )
    customer = make_customer(session, identities={"id": "c-1"})
    session.add(channel)
    session.flush()
    for n in range(6):
        session.add(
            Event(
                channel_id=channel.id, webhook_id=f"w{n}", type=f"e{n}",
                customer_id=customer.id, payload={}, occurred_at=at,
                received_at=at if n % 2 else at - timedelta(seconds=n),
            )
        )  # fmt: skip
        session.add(
            Delivery(
                customer_id=customer.id, channel_id=channel.id, payload={},
                created_at=at - timedelta(seconds=n % 3),
            )
        )  # fmt: skip
    for _ in range(3):
        entry = audit.record(session, None, "customer.consent", "customer", customer.id)
        entry.at = at
    session.commit()
    return customer


def _key(item):
    return (
        item["kind"],
        item.get("event_id") or item.get("delivery_id") or item.get("entry_id"),
    )


@pytest.mark.parametrize("limit", [1, 2, 4, 7])
def test_paging_the_timeline_by_cursor_gives_every_entry_once_newest_first(
    session, crowded, limit
):
    whole = read.timeline(session, crowded, 1000)
    assert len(whole) == 15
    walked, before = [], None
    while True:
        page = read.timeline(session, crowded, limit, before)
        walked += page
        if len(page) < limit:
            break
        before = page[-1]["cursor"]
    assert [_key(i) for i in walked] == [_key(i) for i in whole]
    assert [i["at"] for i in walked] == sorted((i["at"] for i in walked), reverse=True)


def test_a_bare_time_as_cursor_means_strictly_before_it(session, crowded):
    newest = read.timeline(session, crowded, 1)[0]["at"]
    older = read.timeline(session, crowded, 100, newest)
    assert older and all(item["at"] < newest for item in older)
    with pytest.raises(CustomerError) as raised:
        read.timeline(session, crowded, 10, "last tuesday")
    assert raised.value.status == 400 and raised.value.field == "before"
    with pytest.raises(CustomerError):
        read.timeline(session, crowded, 10, f"{newest}~run~1")


def test_erasure_counts_are_what_erase_removes(world, session):
    world.publish(sample())
    world.post(CART)
    world.post(
        {"type": "hello", "customer": {"email": "ada@example.com", "phone": "+1"}}
    )
    other = identity.resolve(session, [("email", "twin@example.com")], None)
    ada = read.find(session, "id:c-42")
    identity.merge_customers(
        session, ada, [other], {"because": ["email:twin@example.com"]}
    )
    session.commit()
    world.later(timedelta(hours=2))
    ada = read.find(session, "id:c-42")
    counts = privacy.erasure_counts(session, ada)
    assert counts == {
        "profiles": 2,
        "identities": 4,
        "events": 2,
        "runs": 1,
        "steps": len(world.steps()),
        "deliveries": 1,
        "kept_by_schemas": 0,
    }
    removed = privacy.erase(session, ada, None)
    session.commit()
    assert removed == {k: v for k, v in counts.items() if k != "profiles"}
    notes = [entry.detail for entry in session.scalars(select(AuditEntry))]
    assert "twin@example.com" not in str(notes)  # the merge note's reasons went too
    assert session.scalars(select(Customer)).all() == []


def test_search_skips_merged_profiles_and_matches_identifiers(session):
    kept = identity.resolve(session, [("email", "kept@example.com")], None)
    gone = identity.resolve(session, [("phone", "+4412345")], None)
    identity.merge_customers(session, kept, [gone], {"because": []})
    session.commit()
    found = lambda q: session.scalars(read.search(q)).all()  # noqa: E731
    assert found("") == [kept]
    assert found("44 12") == [kept]  # the phone moved to the survivor
    assert found(f"#{gone.id}") == []
    assert found("phone:+441") == [kept] and found("email:+441") == []
