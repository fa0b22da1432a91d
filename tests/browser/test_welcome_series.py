"""A first-time marketer builds and publishes a welcome series at 1280x800, by keyboard and
mouse, with no JSON: a typo in a name is caught on its step and before publishing, nothing
typed is lost on a reload, and the review warns about another journey on the same event."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.journeys import lifecycle
from engine.models import Channel, Journey, Role, utcnow
from tests.browser.test_canvas import _drag
from tests.browser.test_draw_journey import _draft, _step
from tests.browser.test_pages import _sign_in
from tests.browser.test_rule_builder import _settled
from tests.factories import make_user


def _ready(page: Page) -> None:
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()


def _add_after(page: Page, name: str, step_type: str) -> None:
    """Press the "+" below a step's output (named for a screen reader) and choose a type."""
    page.get_by_role("button", name=name, exact=True).click()
    dialog = page.locator("#add-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=step_type, exact=True).click()
    expect(dialog).to_be_hidden()


def _panel_for(page: Page, node_id: str, heading: str):
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name=heading)).to_be_visible()
    expect(panel.locator(f'[data-panel-node="{node_id}"]')).to_be_attached()
    _settled(page)
    return panel


def _welcome_world(session, settings) -> Journey:
    """The demo's channels and customers, email and SMS able to deliver, and an older
    onboarding journey live on signed_up that took in three customers this week."""
    load_demo(session, SecretBox(settings.encryption_key))
    for channel in session.scalars(select(Channel)):
        channel.outbound_url = f"https://{channel.slug}.example.com/actions"
    onboarding = session.scalars(
        select(Journey).where(Journey.name == "Onboarding across email and app")
    ).one()
    lifecycle.publish(session, onboarding, lifecycle.check_context(session), None)
    counters.add(
        session,
        Metric.ENTERED,
        utcnow(),
        journey_id=onboarding.id,
        version_id=1,
        amount=3,
    )
    make_user(session, Role.marketer, email="marketer@example.com")
    session.commit()
    return onboarding


def test_a_first_time_marketer_builds_and_publishes_the_welcome_series(
    page: Page, live_server, session, settings, screenshot_dir
):
    _welcome_world(session, settings)
    _sign_in(page, live_server, "marketer@example.com")

    # A blank journey, by keyboard.
    page.get_by_role("button", name="New journey").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.type("Welcome series")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Blank: a trigger and an exit")).to_be_checked()
    page.keyboard.press("Enter")
    _ready(page)
    journey_id = page.url.rstrip("/").rsplit("/", 1)[-1]

    # The trigger: signed_up.
    _step(page, "start").click()
    panel = _panel_for(page, "start", "Trigger")
    panel.get_by_label("Event that starts the journey").fill("signed_up")
    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()
    expect(page.locator("#problem-count")).to_have_text("No problems")

    # "+" below the trigger: a wait of one day goes in between the trigger and the exit.
    _add_after(page, "Add a step after When signed_up", "Wait")
    panel = _panel_for(page, "wait_1", "Wait")
    panel.get_by_label("Wait for").fill("1")
    panel.get_by_label("Unit").select_option("days")
    # The email after it, by keyboard: Tab reaches the "+", Enter opens the list.
    expect(panel.locator(".pending")).to_contain_text(
        "saved when you choose another step"
    )
    page.get_by_role("button", name="Add a step after Wait 1 hour").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#add-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(
        "The new step goes in between, before End the journey"
    )
    dialog.get_by_role("button", name="Send", exact=True).focus()
    page.keyboard.press("Enter")
    panel = _panel_for(page, "send_1", "Send")
    # The wait's form was saved on the way to the new step.
    expect(_step(page, "wait_1")).to_contain_text("Wait 1 day")

    # The welcome email, its subject typed with a slip: customer.first_name.
    panel.get_by_label("Channel", exact=True).select_option("email")
    # The channel's "choose" goes with the choice, before any save.
    expect(panel.get_by_text("choose the channel to send through")).to_have_count(0)
    panel.get_by_label("Field", exact=True).fill("subject")
    template = panel.locator("textarea.template")
    template.click()
    page.keyboard.type("Welcome {{ customer.first_name }}")
    preview = panel.locator(".preview").first
    expect(preview).to_contain_text(
        "{{ customer.first_name }} in “subject” is always empty; did you mean "
        "{{ customer.traits.first_name }}?"
    )
    page.screenshot(path=str(screenshot_dir / "welcome-typo.png"))

    # Wait for the app to be opened, up to 3 days: "+" below the email.
    _add_after(
        page,
        "Add a step after Send via a channel",
        "Wait for event",
    )
    panel = _panel_for(page, "wait_for_event_1", "Wait for event")
    panel.get_by_label("Event to wait for").fill("app_opened")
    panel.get_by_label("Give up after").fill("3")
    panel.get_by_label("Unit").select_option("days")
    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()
    # An SMS when it timed out, and from there to the end.
    _add_after(
        page, "Add a step after Wait for app_opened, up to 3 days (timed out)", "Send"
    )
    panel = _panel_for(page, "send_2", "Send")
    panel.get_by_label("Channel", exact=True).select_option("sms")
    panel.get_by_label("Template of text").fill(
        "Your account is ready, {{ customer.traits.first_name }}: open the app to start."
    )
    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()
    _drag(
        page,
        '[data-node-id="send_2"] [port="out:out"]',
        '[data-node-id="end"] [port="in"]',
    )
    expect(page.locator("#problem-count")).to_have_text("No problems")
    page.get_by_role("button", name="Arrange").click()
    page.get_by_role("button", name="Fit").click()
    expect(page.locator("#save-status")).to_contain_text("Saved")
    page.screenshot(path=str(screenshot_dir / "welcome-drawn.png"))

    # A reload loses nothing that was typed.
    before = _draft(page, live_server, journey_id)["document"]
    page.reload()
    _ready(page)
    assert _draft(page, live_server, journey_id)["document"] == before
    for node_id, words in [
        ("start", "When signed_up"),
        ("wait_1", "Wait 1 day"),
        ("send_1", "Send via Email provider: Welcome {{ customer.first_name }}"),
        ("wait_for_event_1", "Wait for app_opened, up to 3 days"),
        ("send_2", "Send via SMS provider: Your account is ready"),
    ]:
        expect(_step(page, node_id)).to_contain_text(words)

    # The review: the slip, and another live journey on signed_up.
    page.get_by_role("button", name="Publish…").click()
    review = page.locator(".before-publish")
    expect(review).to_contain_text(
        "{{ customer.first_name }} in “subject” is always empty; did you mean "
        "{{ customer.traits.first_name }}?"
    )
    expect(review).to_contain_text(
        "“Onboarding across email and app” is live and also starts when signed_up "
        "arrives: it took in 3 customers in the last 7 days"
    )
    page.screenshot(path=str(screenshot_dir / "welcome-review.png"))

    # Fixed from the review: the step opens on the canvas, its suggestion is taken.
    review.get_by_role("link", name="Open the step").click()
    _ready(page)
    panel = _panel_for(page, "send_1", "Send")
    panel.get_by_role("button", name="Use {{ customer.traits.first_name }}").click()
    template = panel.get_by_label("Template of subject")
    expect(template).to_have_value("Welcome {{ customer.traits.first_name }}")
    expect(panel.locator(".preview").first).to_contain_text("Welcome Katherine")
    expect(panel.locator(".template-warnings")).to_have_count(0)
    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()

    page.get_by_role("button", name="Publish…").click()
    expect(review).not_to_contain_text("always empty")
    expect(review).to_contain_text("also starts when signed_up")
    page.get_by_role("button", name="Publish version 1").click()
    expect(page.get_by_text("Published version 1 of “Welcome series”")).to_be_visible()
    live = _draft(page, live_server, journey_id)["document"]
    subject = next(n for n in live["nodes"] if n["id"] == "send_1")["config"]
    assert subject == {
        "channel": "email",
        "message": {"subject": "Welcome {{ customer.traits.first_name }}"},
    }
    assert sorted(
        (e["from"], e.get("port", "out"), e["to"]) for e in live["edges"]
    ) == [
        ("send_1", "out", "wait_for_event_1"),
        ("send_2", "out", "end"),
        ("start", "out", "wait_1"),
        ("wait_1", "out", "send_1"),
        ("wait_for_event_1", "event", "end"),
        ("wait_for_event_1", "timeout", "send_2"),
    ]
