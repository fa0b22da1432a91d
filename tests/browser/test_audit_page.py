from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine import audit
from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import Channel, Journey, Role
from tests.browser.test_pages import _sign_in
from tests.factories import make_user


def test_an_admin_filters_the_audit_log(
    page: Page, live_server, session, settings, screenshot_dir
):
    load_demo(session, SecretBox(settings.encryption_key))
    admin = make_user(session, Role.admin, email="admin@example.com")
    editor = make_user(session, Role.marketer, email="marketer@example.com")
    journey = session.scalars(
        select(Journey).where(Journey.name == "Cart recovery")
    ).one()
    web = session.scalars(select(Channel).where(Channel.slug == "web")).one()
    audit.record(session, editor, "journey.pause", "journey", journey.id)
    audit.record(session, editor, "journey.resume", "journey", journey.id)
    audit.record(
        session,
        admin,
        "channel.update",
        "channel",
        web.slug,
        {"rate_limit": [100, 250]},
    )
    audit.record(
        session, admin, "channel.rotate", "channel", "web", {"grace_period": "P1D"}
    )
    audit.record(
        session,
        editor,
        "customer.consent",
        "customer",
        1,
        {"changes": {"sms": False}, "before": {"sms": True}},
    )
    audit.record(
        session,
        admin,
        "user.update",
        "user",
        editor.id,
        {"role": ["viewer", "marketer"]},
    )
    session.commit()
    _sign_in(page, live_server, "admin@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Admin", exact=True
    ).click()
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_contain_text("Role or access changed")
    expect(rows.first).to_contain_text("viewer → marketer")
    expect(page.get_by_role("link", name="Cart recovery").first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "audit.png"))

    page.get_by_label("What").select_option("journey.")
    page.get_by_label("Who").fill("marketer@")
    page.get_by_label("Who").press("Enter")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Journey resumed")
    expect(page.get_by_label("What")).to_have_value("journey.")
    page.get_by_role("link", name="Clear").click()
    expect(page.get_by_label("Who")).to_have_value("")
