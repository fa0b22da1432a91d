"""A support agent finds a customer, reads their cross-channel history and changes consent,
all with the keyboard."""

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.execution import Effects, drains, timers
from engine.models import Channel, Role, Run, utcnow
from tests.browser.test_pages import _sign_in
from tests.channels import post_event
from tests.conftest import work_all
from tests.factories import make_user
from webapp.hooks.channels import forget

ADA = {"id": "c-1001", "email": "ada@example.com"}


def _history(client, session, settings, redis_client):
    """Ada leaves a cart twice on the web site, is called about the first (support desk has
    no action URL, so the call is suppressed), opens an email and the app in between."""
    box = SecretBox(settings.encryption_key)
    load_demo(session, box)
    session.commit()
    secrets = {
        c.slug: box.decrypt(c.inbound_secret) for c in session.scalars(select(Channel))
    }
    forget()

    def post(slug, body):
        response = post_event(client, slug, secrets[slug], body)
        assert response.status_code == 202, response.get_json()
        work_all(redis_client)

    cart = {"type": "cart_abandoned", "customer": ADA, "properties": {"cart_value": 89}}
    post("web", cart)
    session.rollback()
    for run in session.scalars(select(Run).where(Run.wake_at.is_not(None))):
        run.wake_at -= timedelta(hours=2)
    session.commit()
    effects = Effects()
    from engine import runtime

    with runtime.current().database.session(writer=True) as writer:
        timers.sweep_due_runs(writer, utcnow(), effects)
    drains.follow_up(redis_client, effects)
    work_all(redis_client)
    opened = {"subject": "Still thinking?", "campaign": "cart"}
    post("email", {"type": "email_opened", "customer": ADA, "properties": opened})
    post(
        "app", {"type": "app_opened", "customer": ADA, "properties": {"screen": "cart"}}
    )
    post("web", {**cart, "properties": {"cart_value": 142.5, "items": 2}})
    session.rollback()


def test_a_marketer_finds_a_customer_and_withdraws_consent_with_the_keyboard(
    page: Page,
    live_server,
    client,
    session,
    settings,
    redis_client,
    engine_runtime,
    screenshot_dir,
):
    _history(client, session, settings, redis_client)
    make_user(session, Role.marketer, email="marketer@example.com")
    _sign_in(page, live_server, "marketer@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Customers", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()
    page.wait_for_load_state()  # htmx has bound the search
    page.screenshot(path=str(screenshot_dir / "customers.png"))

    search = page.get_by_label("Search customers by any identifier")
    search.focus()
    page.keyboard.type("ADA@")
    results = page.locator("#customers")
    expect(results.get_by_role("link", name="Grace")).to_have_count(0)
    expect(page).to_have_url(f"{live_server}/customers/?q=ADA%40")
    page.keyboard.press("Tab")  # the Search button
    page.keyboard.press("Tab")  # the first (only) customer
    expect(results.get_by_role("link", name="Ada")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Ada", exact=True)).to_be_visible()
    page.wait_for_load_state()  # htmx has bound the consent switches
    timeline = page.locator("#timeline")
    for channel in ("Web site", "Email provider", "Mobile app", "Support desk"):
        expect(timeline.locator(".source", has_text=channel).first).to_be_visible()
    expect(
        timeline.get_by_text("Not sent: the channel has no action URL")
    ).to_be_visible()
    expect(page.locator("#runs-title + ul")).to_contain_text("Cart recovery")
    expect(page.locator("#runs-title + ul")).to_contain_text("order_completed")

    first = timeline.locator("details").first
    first.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(first.locator("pre")).to_be_visible()
    page.keyboard.press("Enter")
    expect(first.locator("pre")).to_be_hidden()

    switch = page.get_by_role("switch", name="Email provider")
    expect(switch).to_be_checked()
    switch.focus()
    page.keyboard.press("Space")
    expect(page.get_by_role("status").filter(has_text="Saved")).to_have_text(
        "Saved: email withdrawn"
    )
    switch = page.get_by_role("switch", name="Email provider")
    expect(switch).not_to_be_checked()
    expect(switch).to_be_focused()  # the keyboard stays where it was
    expect(page.locator("#consent-email-state")).to_have_text("withdrawn")

    page.wait_for_timeout(300)  # let the switch's transition finish before the picture
    page.screenshot(path=str(screenshot_dir / "customer.png"))

    page.reload()
    expect(page.get_by_role("switch", name="Email provider")).not_to_be_checked()
    expect(timeline.get_by_text("Consent changed: email withdrawn")).to_be_visible()


@pytest.mark.security
def test_a_consent_change_that_is_not_saved_says_why(
    page: Page,
    live_server,
    client,
    session,
    settings,
    redis_client,
    engine_runtime,
    console_errors,
):
    """The message comes from app.js, not from an hx-on attribute the CSP would block."""
    box = SecretBox(settings.encryption_key)
    load_demo(session, box)
    session.commit()
    web = session.scalars(select(Channel).where(Channel.slug == "web")).one()
    forget()
    event = {"type": "app_opened", "customer": ADA, "traits": {"first_name": "Ada"}}
    assert (
        post_event(client, "web", box.decrypt(web.inbound_secret), event).status_code
        == 202
    )
    work_all(redis_client)
    session.rollback()
    make_user(session, Role.marketer, email="marketer@example.com")
    _sign_in(page, live_server, "marketer@example.com")
    page.goto(f"{live_server}/customers/?q=ada")
    page.locator("#customers").get_by_role("link", name="Ada").click()
    expect(page.get_by_role("heading", name="Ada", exact=True)).to_be_visible()
    page.wait_for_load_state()  # htmx has bound the consent switches
    status = page.locator("#consent .consent-status")

    page.route("**/consent", lambda route: route.fulfill(status=503, body="busy"))
    page.get_by_role("switch", name="Email provider").click()
    expect(status).to_have_text(
        "Not saved: the server answered 503. Reload the page and try again."
    )
    page.unroute("**/consent")
    page.route("**/consent", lambda route: route.abort())
    page.get_by_role("switch", name="Web site").click()
    expect(status).to_have_text(
        "Not saved: the server could not be reached. Reload the page and try again."
    )
    # What the browser and htmx log about the two refused requests, and nothing else.
    expected = (
        "status of 503",
        "net::ERR_FAILED",
        "Response Status Error Code 503",
        "htmx:sendError",
        "htmx:afterRequest",
    )
    console_errors[:] = [
        e for e in console_errors if not any(part in e for part in expected)
    ]
