"""What an admin does to a channel, done by the engine: each change with its audit entry."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import channels, durations
from engine.audit import SYSTEM
from engine.crypto import SecretBox
from engine.models import AuditEntry, Delivery, DeliveryStatus, Role, utcnow
from tests.factories import make_user


@pytest.fixture
def box(settings):
    return SecretBox(settings.encryption_key)


@pytest.fixture
def admin(session):
    return make_user(session, Role.admin)


@pytest.fixture
def web(session, box):
    made = channels.create_channel(session, box, "web", "Web site", "web")
    session.commit()
    return made.channel


def _entries(session):
    return [
        (entry.actor, entry.action, entry.target_type, entry.target_id, entry.detail)
        for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
    ]


def test_creating_a_channel_records_who_and_which_kind(session, box, admin):
    made = channels.create(session, box, "shop", "Shop", "web", admin)
    session.commit()
    assert made.channel.slug == "shop" and made.inbound_secret.startswith("whsec_")
    assert _entries(session) == [
        (admin.email, "channel.create", "channel", "shop", {"kind": "web"})
    ]
    assert made.inbound_secret not in str(_entries(session))


def test_a_refused_channel_records_nothing(session, box, admin):
    with pytest.raises(channels.ChannelError) as refused:
        channels.create(session, box, "Shop!", "Shop", "web", admin)
    assert refused.value.field == "slug"
    session.rollback()
    assert _entries(session) == []


def test_an_update_records_each_change_and_no_change_records_nothing(
    session, web, admin
):
    changes = channels.update(
        session, web, admin, "Shop", "https://shop.example/actions", 250
    )
    session.commit()
    expected = {
        "name": ["Web site", "Shop"],
        "outbound_url": [None, "https://shop.example/actions"],
        "rate_limit": [100, 250],
    }
    assert changes == expected
    again = channels.update(
        session, web, admin, "Shop", "https://shop.example/actions", 250
    )
    session.commit()
    assert again == {}
    assert _entries(session) == [
        (admin.email, "channel.update", "channel", "web", expected)
    ]


def test_disabling_and_enabling_record_only_what_changed(session, web, admin):
    assert channels.disable(session, web, admin) is True
    assert channels.disable(session, web, admin) is False  # disabled already
    assert not web.enabled
    assert channels.enable(session, web, None) is True
    assert channels.enable(session, web, None) is False
    session.commit()
    assert web.enabled
    assert _entries(session) == [
        (admin.email, "channel.disable", "channel", "web", {}),
        (SYSTEM, "channel.enable", "channel", "web", {}),
    ]


def test_a_rotation_records_its_grace_period(session, box, web, admin):
    before = box.decrypt(web.inbound_secret)
    now = utcnow()
    rotated = channels.rotate(session, box, web, admin, "P1D", now)
    session.commit()
    assert rotated.inbound_secret != before
    assert rotated.previous_valid_until == now + timedelta(days=1)
    assert box.decrypt(web.previous_inbound_secret) == before
    assert _entries(session) == [
        (admin.email, "channel.rotate", "channel", "web", {"grace_period": "P1D"})
    ]


@pytest.mark.parametrize("grace", ["-P1D", "a while", ""])
def test_a_rotation_with_no_usable_grace_period_changes_nothing(
    session, box, web, admin, grace
):
    secret = web.inbound_secret
    with pytest.raises(durations.DurationError):
        channels.rotate(session, box, web, admin, grace, utcnow())
    session.commit()
    assert web.inbound_secret == secret and web.previous_inbound_secret is None
    assert _entries(session) == []


def test_a_test_action_is_a_pending_delivery_recorded_with_its_id(session, web, admin):
    row = channels.send_test(session, web, admin, utcnow())
    session.commit()
    stored = session.scalars(select(Delivery)).one()
    assert stored.id == row.id and stored.channel_id == web.id
    assert stored.kind == "test" and stored.status is DeliveryStatus.pending
    assert _entries(session) == [
        (admin.email, "channel.test", "channel", "web", {"delivery": row.id})
    ]
