"""A marketer draws the cart-recovery journey on an empty canvas, without any JSON."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.models import ChannelKind, Role
from tests.browser.test_canvas import _drag
from tests.browser.test_pages import _sign_in
from tests.browser.test_rule_builder import _api_journey, _choose, _settled
from tests.factories import make_user

# Cart recovery with the step names the canvas gives new steps. The builder stores the
# trigger's single condition as that condition, which means the same as all of one.
DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = json.loads((DATA / "cart_recovery_drawn.json").read_text())


_FIT_ROOM = """() => {
  const graph = window.throughlineDesigner.graph;
  const journey = graph.localToClient(graph.getContentArea());
  const canvas = document.getElementById("canvas").getBoundingClientRect();
  const toolbar = document.querySelector(".stage .toolbar").getBoundingClientRect();
  return {top: journey.y, bottom: journey.y + journey.height,
          toolbar: toolbar.bottom, canvasBottom: canvas.bottom};
}"""


def _comparable(document: dict) -> dict:
    """The document without its layout, with nodes and edges in a stable order."""
    found = {key: value for key, value in document.items() if key != "layout"}
    found["nodes"] = sorted(found["nodes"], key=lambda node: node["id"])
    found["edges"] = sorted(
        found["edges"], key=lambda edge: (edge["from"], edge.get("port", ""))
    )
    return found


def _step(page: Page, node_id: str) -> Locator:
    return page.locator(f'#canvas [data-node-id="{node_id}"]')


def _open(page: Page, node_id: str, heading: str) -> Locator:
    """Select a step with the mouse; its form comes into the side panel."""
    _step(page, node_id).click()
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name=heading)).to_be_visible()
    expect(panel.locator(f'[data-panel-node="{node_id}"]')).to_be_attached()
    _settled(page)
    return panel


def _save(page: Page, panel: Locator) -> None:
    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()
    _settled(page)


def _connect_by_keyboard(page: Page, node_id: str, port: str, to: str) -> None:
    """Select the step, press C, choose the output and the next step, press Enter."""
    step = _step(page, node_id)
    if "x6-node-selected" not in (step.get_attribute("class") or ""):
        step.click()
    page.locator("#canvas").focus()
    page.keyboard.press("c")
    dialog = page.locator("#connect-dialog")
    expect(dialog).to_be_visible()
    page.locator("#connect-port").select_option(f"out:{port}")
    page.keyboard.press("Tab")
    expect(page.locator("#connect-target")).to_be_focused()
    page.locator("#connect-target").select_option(to)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()


def _draft(page: Page, live_server: str, journey_id: str) -> dict:
    return json.loads(
        page.request.get(f"{live_server}/journeys/{journey_id}/draft.json").text()
    )


def test_draw_configure_simulate_and_publish_cart_recovery(
    page: Page, live_server, session, settings, screenshot_dir
):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    box = SecretBox(settings.encryption_key)
    for slug, name, kind in [
        ("email", "Email provider", ChannelKind.email),
        ("sms", "SMS provider", ChannelKind.sms),
        ("support-desk", "Support desk", ChannelKind.support),
    ]:
        create_channel(session, box, slug, name, kind)
    make_user(session, Role.marketer, email="marketer@example.com")
    session.commit()
    _sign_in(page, live_server, "marketer@example.com")

    # A blank journey, by keyboard.
    page.get_by_role("button", name="New journey").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.type("Cart recovery")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Blank: a trigger and an exit")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    journey_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.locator("#canvas [data-node-id]")).to_have_count(2)
    # The blank trigger names no event yet: the canvas says so before anything is drawn.
    expect(page.locator("#problems")).to_contain_text(
        "When …: name the event that starts the journey, e.g. cart_abandoned"
    )
    expect(page.locator("#publish-state")).to_have_text("Fix the problems to publish.")
    banner = page.get_by_text("as a draft with 1 problem to fix")
    expect(banner).to_be_visible()
    publish = page.get_by_role("button", name="Publish…")
    expect(publish).to_have_attribute("aria-disabled", "true")
    page.screenshot(path=str(screenshot_dir / "blank-journey.png"))
    publish.focus()
    page.keyboard.press("Enter")  # leads to the problems instead of publishing
    expect(page.locator("#problems button").first).to_be_focused()
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()

    # The trigger: its event and, through the rule builder, a minimum cart value.
    panel = _open(page, "start", "Trigger")
    panel.get_by_label("Event that starts the journey").fill("cart_abandoned")
    panel.get_by_role("button", name="+ Add a condition").click()
    field = panel.get_by_label("Field", exact=True)
    expect(field).to_be_focused()
    page.keyboard.type("event.properties.cart_value")
    _choose(page, panel.get_by_label("Comparison"), "is at least")
    expect(panel.get_by_label("Type")).to_have_value("number")
    panel.get_by_label("Value", exact=True).fill("50")
    _save(page, panel)
    expect(page.locator("#problem-count")).to_have_text("No problems")
    expect(banner).to_have_count(0)  # the banner about the problem leaves with it

    # Wait for an order, an hour at most: added by click on the palette.
    page.locator('#palette [data-node-type="wait_for_event"]').click()
    expect(_step(page, "wait_for_event_1")).to_be_visible()
    expect(page.locator("#problems")).to_contain_text("Wait for …, up to 1 day:")
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name="Wait for event")).to_be_visible()
    _settled(page)
    panel.get_by_label("Event to wait for").fill("order_completed")
    panel.get_by_label("Give up after").fill("1")
    panel.get_by_label("Unit").select_option("hours")
    _save(page, panel)

    # The VIP test and the two sends: added from the palette by keyboard.
    for type_name, node_id in [
        ("condition", "condition_1"),
        ("send", "send_1"),
        ("send", "send_2"),
    ]:
        page.locator(f'#palette [data-node-type="{type_name}"]').focus()
        page.keyboard.press("Enter")
        expect(_step(page, node_id)).to_be_visible()
    expect(page.locator("#canvas [data-node-id]")).to_have_count(6)
    page.get_by_role("button", name="Arrange").click()
    page.get_by_role("button", name="Fit").click()

    panel = _open(page, "condition_1", "Condition")
    field = panel.get_by_label("Field", exact=True)
    field.fill("customer.traits.tier")
    _settled(page)
    panel.get_by_label("Comparison").select_option("is")
    _settled(page)
    panel.get_by_label("Value", exact=True).fill("vip")
    expect(panel.get_by_label("Value", exact=True)).to_have_value("vip")
    _save(page, panel)

    panel = _open(page, "send_1", "Send")
    panel.get_by_label("Channel", exact=True).select_option("support-desk")
    panel.get_by_label("Field", exact=True).fill("task")
    template = panel.locator("textarea.template")
    template.fill("Call {{ customer.traits.first_name }}")
    _save(page, panel)

    panel = _open(page, "send_2", "Send")
    panel.get_by_label("Channel", exact=True).select_option("email")
    panel.get_by_label("Field", exact=True).fill("subject")
    panel.locator("textarea.template").fill("Still thinking?")
    panel.get_by_label("If it fails, try").select_option("sms")
    _save(page, panel)

    # Wiring: the trigger's output dragged onto the wait (it replaces start -> end), the
    # rest chosen with the keyboard.
    _drag(
        page,
        '[data-node-id="start"] [port="out:out"]',
        '[data-node-id="wait_for_event_1"] [port="in"]',
    )
    expect(page.locator("#save-status")).to_contain_text("Saved")
    for node_id, port, to in [
        ("wait_for_event_1", "event", "end"),
        ("wait_for_event_1", "timeout", "condition_1"),
        ("condition_1", "true", "send_1"),
        ("condition_1", "false", "send_2"),
        ("send_1", "out", "end"),
    ]:
        _connect_by_keyboard(page, node_id, port, to)
    # One send is still loose: publishing waits for it.
    expect(page.locator("#problems")).to_contain_text("Still thinking?: ")
    expect(page.locator("#publish-state")).to_have_text("Fix the problems to publish.")
    _connect_by_keyboard(page, "send_2", "out", "end")
    expect(page.locator("#problem-count")).to_have_text("No problems")
    expect(page.locator("#publish-state")).to_have_text("Ready to publish.")
    expect(publish).to_have_attribute("aria-disabled", "false")

    # The journey's goal and exit event, in its settings.
    page.get_by_role("button", name="Settings").click()
    panel = page.locator("#node-panel")
    _settled(page)
    panel.get_by_label("Event that counts as converting").fill("order_completed")
    panel.get_by_label("Within").fill("7")
    panel.locator("select[name$='goal_unit']").select_option("days")
    panel.get_by_role("button", name="+ Add an exit event").click()
    _settled(page)
    panel.get_by_label("Event", exact=True).last.fill("unsubscribed")
    panel.get_by_role("button", name="Save settings").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()

    page.get_by_role("button", name="Arrange").click()
    expect(page.locator("#save-status")).to_contain_text("Saved")
    page.get_by_role("button", name="Fit").click()
    page.evaluate("window.scrollTo(0, 0)")
    # Fit shows the whole journey below the floating toolbar.
    room = page.evaluate(_FIT_ROOM)
    assert room["top"] >= room["toolbar"] and room["bottom"] <= room["canvasBottom"]
    page.screenshot(path=str(screenshot_dir / "drawn-cart-recovery.png"))
    assert _comparable(
        _draft(page, live_server, journey_id)["document"]
    ) == _comparable(EXPECTED)

    # Simulate a VIP's abandoned cart: the support desk is asked to call her.
    page.get_by_text("Simulate", exact=True).click()
    page.get_by_role(
        "button", name="Edit the traits as JSON"
    ).click()  # JSON remains an option
    page.get_by_label("Customer traits as JSON").fill(
        '{"tier": "vip", "first_name": "Ada"}'
    )
    page.get_by_label("Events, one per line").fill(
        'PT0S cart_abandoned {"cart_value": 120.5}'
    )
    page.get_by_role("button", name="Run simulation").click()
    result = page.locator("#sim-result")
    expect(result).to_contain_text("Call [first_name] → support-desk")
    expect(result).to_contain_text("Call Ada")
    expect(result.locator("li.lit")).to_have_count(
        result.locator("li[data-step]").count(), timeout=10_000
    )

    # Publish, after the review.
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("button", name="Publish version 1").click()
    expect(page.get_by_text("Published version 1 of “Cart recovery”")).to_be_visible()

    answer = _api_journey(page, live_server, session, int(journey_id))
    assert answer["status"] == "live"
    assert answer["live"]["version"] == 1
    assert _comparable(answer["live"]["document"]) == _comparable(EXPECTED)
    assert _comparable(answer["draft"]) == _comparable(EXPECTED)
    assert errors == []
