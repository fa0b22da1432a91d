"""An erased customer's id is never given to another person: the audit log and old links
keep naming one person each."""

import pytest
from sqlalchemy import text

from engine import migrate
from engine.db import Database
from engine.models import AuditEntry, Customer
from engine.profiles import privacy
from tests.factories import make_customer

pytestmark = pytest.mark.security


def _new_customer(session, email):
    return make_customer(session, identities={"email": email}).id


def test_a_profile_made_after_an_erasure_gets_a_new_id(session):
    first = _new_customer(session, "first@sec.test")
    privacy.erase(session, session.get(Customer, first), None)
    session.commit()
    second = _new_customer(session, "second@sec.test")
    assert second != first
    assert [e.target_id for e in session.query(AuditEntry)] == [str(first)]


def test_the_migration_keeps_every_row_and_starts_after_the_highest_id(
    tmp_path, settings
):
    if not settings.is_sqlite:
        pytest.skip("PostgreSQL sequences never went back")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0004")
    database = Database(url)
    with database.session() as session:
        ids = [_new_customer(session, f"c{n}@sec.test") for n in range(3)]
        session.get(Customer, ids[1]).merged_into_id = ids[0]
        session.add(
            AuditEntry(
                actor="admin@sec.test",
                action="customer.erase",
                target_type="customer",
                target_id="9",
            )
        )
    database.dispose()
    migrate.upgrade(url)
    database = Database(url)
    with database.session() as session:
        assert session.scalar(text("SELECT count(*) FROM identities")) == 3
        assert session.get(Customer, ids[1]).merged_into_id == ids[0]
        assert session.execute(text("PRAGMA foreign_key_check")).all() == []
        assert _new_customer(session, "next@sec.test") == 10
    database.dispose()


def test_a_profile_an_event_makes_after_an_erasure_gets_a_new_id(
    client, session, settings, redis_client, engine_runtime
):
    """Profiles made by intake draw their ids in the batch, not by a flush."""
    from engine.channels import create_channel
    from engine.crypto import SecretBox
    from engine.models import Role
    from tests.channels import post_event
    from tests.conftest import work_all
    from tests.factories import api_client
    from webapp.hooks.channels import forget

    forget()
    secret = create_channel(
        session, SecretBox(settings.encryption_key), "web", "Web", "web"
    ).inbound_secret
    session.commit()
    api = api_client(client, session, Role.admin)

    def made(email):
        body = {"type": "signed_up", "customer": {"email": email}}
        assert post_event(client, "web", secret, body).status_code == 202
        work_all(redis_client)
        return api.get(f"/api/v1/customers/email:{email}").get_json()["id"]

    first = made("a@sec.test")
    assert api.delete("/api/v1/customers/email:a@sec.test").status_code == 200
    second = made("b@sec.test")
    assert second != first
