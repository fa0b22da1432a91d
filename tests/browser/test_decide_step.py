"""A journey's Decide step on the canvas: its outputs are the live table's outcomes."""

import json
from pathlib import Path

from playwright.sync_api import Page, expect

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.journeys import lifecycle
from engine.models import Role
from tests.browser.test_pages import _sign_in
from tests.factories import make_user

ROUTING = Path(__file__).resolve().parents[1] / "data" / "support_routing.json"


def test_a_decide_step_shows_the_outcomes_of_its_table(
    page: Page, live_server, session, settings, screenshot_dir
):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    load_demo(session, SecretBox(settings.encryption_key))  # support_tier is live
    make_user(session, Role.marketer, email="marketer@example.com")
    ctx = lifecycle.check_context(session)
    journey, problems = lifecycle.create_journey(
        session, json.loads(ROUTING.read_text()), ctx, None
    )
    assert problems == []
    session.commit()
    _sign_in(page, live_server, "marketer@example.com")
    page.goto(f"{live_server}/journeys/{journey.id}")
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    page.get_by_role("button", name="Fit").click()
    step = page.locator('#canvas [data-node-id="tier"]')
    expect(step).to_have_attribute("data-node-type", "decide")
    expect(step).to_contain_text("Support tier")
    expect(step).to_contain_text("Decide by the table support_tier")
    labels = page.locator("#canvas .x6-edge-label")
    expect(labels.filter(has_text="premium")).to_have_count(1)
    expect(labels.filter(has_text="otherwise")).to_have_count(1)
    expect(page.locator("#problem-count")).to_have_text("No problems")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=str(screenshot_dir / "decide-step.png"))
    # Its form picks the table by name.
    step.click()
    picker = page.locator("#node-panel").get_by_role("combobox", name="Decision table")
    expect(picker).to_have_value("support_tier")
    expect(picker.locator("option:checked")).to_have_text("Support tier")
    page.screenshot(path=str(screenshot_dir / "decide-step-form.png"))
    assert errors == []
