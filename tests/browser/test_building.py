"""Building by hand: a "+" below each output adds the next step (in between, below a
connected one), a step dropped on an edge goes in between, and a send's preview is for the
customer picked."""

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import Journey, utcnow
from tests.browser.test_accessibility import serious_violations
from tests.browser.test_canvas import _open_cart_recovery
from tests.browser.test_rule_builder import _settled

_EDGES = """() => window.throughlineDesigner.currentDocument().edges
  .map((e) => `${e.from}:${e.port || "out"}>${e.to}`).sort()"""
_BOXES = """() => Object.fromEntries(window.throughlineDesigner.graph.getNodes().map((n) => {
  const b = n.getBBox(); return [n.id, [b.x, b.y, b.width, b.height]]; }))"""


def _apart(boxes: dict) -> None:
    items = list(boxes.items())
    for i, (one, (x1, y1, w1, h1)) in enumerate(items):
        for two, (x2, y2, w2, h2) in items[i + 1 :]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1, (
                one,
                two,
            )


def test_the_plus_below_an_output_adds_the_next_step_connected_there(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    count = "window.throughlineDesigner.graph.getNodes().length"
    # A "+" below every output, named for a screen reader (each send has three: out,
    # "if it fails" and "if held back").
    plus = page.get_by_role("button", name="Add a step after", exact=False).filter(
        visible=True
    )
    expect(plus).to_have_count(11)
    mail_plus = page.get_by_role(
        "button",
        name="Add a step after Send via Email provider (SMS provider if it fails): "
        "Still thinking? (if it fails)",
        exact=True,
    )
    before = page.evaluate(_EDGES)

    mail_plus.click()
    dialog = page.get_by_role("dialog", name="Add a step after Send (if it fails)")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Start")).to_have_count(0)

    dialog.get_by_role("button", name="Update profile").click()
    expect(dialog).to_be_hidden()
    page.wait_for_function(f"{count} === 7")
    assert "mail:error>update_profile_1" in page.evaluate(_EDGES)
    boxes = page.evaluate(_BOXES)
    _apart(boxes)
    assert boxes["update_profile_1"][1] > boxes["mail"][1] + boxes["mail"][3]
    expect(page.locator("#save-status")).to_have_text("Saved · revision 2")
    page.screenshot(path=str(screenshot_dir / "added-after.png"))

    # One undo takes step and edge away.
    page.keyboard.press("Control+z")
    page.wait_for_function(f"{count} === 6")
    assert page.evaluate(_EDGES) == before
    expect(mail_plus).to_be_visible()

    # By keyboard: Tab reaches the "+", Enter opens the list, Enter chooses.
    mail_plus.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Wait", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_function(f"{count} === 7")
    assert "mail:error>wait_1" in page.evaluate(_EDGES)
    expect(
        page.get_by_role("button", name="Add a step after Wait 1 hour")
    ).to_be_visible()
    assert errors == []


def test_the_plus_below_a_connected_output_puts_the_step_in_between(
    page: Page, live_server, session, settings
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    count = "window.throughlineDesigner.graph.getNodes().length"
    before = page.evaluate(_EDGES)
    boxes = page.evaluate(_BOXES)
    page.get_by_role(
        "button", name="Add a step after When cart_abandoned", exact=False
    ).click()
    dialog = page.get_by_role("dialog", name="Add a step after Trigger")
    expect(dialog).to_contain_text(
        "The new step goes in between, before Wait for order_completed, up to 1 hour."
    )
    dialog.get_by_role("button", name="Update profile").click()
    page.wait_for_function(f"{count} === 7")
    edges = page.evaluate(_EDGES)
    assert "start:out>update_profile_1" in edges
    assert "update_profile_1:out>wait" in edges
    assert "start:out>wait" not in edges
    # The steps after it moved down a row to make room; none overlap.
    moved = page.evaluate(_BOXES)
    _apart(moved)
    assert moved["wait"][1] > boxes["wait"][1]
    assert moved["start"] == boxes["start"]
    expect(page.locator("#save-status")).to_have_text("Saved · revision 2")
    page.keyboard.press("Control+z")  # one undo: step, edges and moves
    page.wait_for_function(f"{count} === 6")
    assert page.evaluate(_EDGES) == before
    assert page.evaluate(_BOXES) == boxes
    assert errors == []


# The middle of the edge from `source` (its `port`), in the page's coordinates.
_EDGE_MIDDLE = """([source, port]) => {
  const graph = window.throughlineDesigner.graph;
  const edge = graph.getEdges().find((e) =>
    e.getSourceCellId() === source && e.getSourcePortId() === `out:${port}`);
  const path = graph.findViewByCell(edge).path;
  const p = graph.localToClient(path.pointAtLength(path.length() / 2));
  return [p.x, p.y];
}"""


def test_a_step_dropped_on_an_edge_goes_in_between(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    count = "window.throughlineDesigner.graph.getNodes().length"
    before = page.evaluate(_EDGES)
    assert "start:out>wait" in before

    # From the step list: the edge under the pointer is highlighted, the drop splices.
    page.locator('#palette [data-node-type="update_profile"]').hover()
    page.mouse.down()
    x, y = page.evaluate(_EDGE_MIDDLE, ["start", "out"])
    page.mouse.move(x, y - 10, steps=8)
    page.mouse.move(x, y, steps=2)
    expect(page.locator(".x6-edge.drop-target")).to_have_count(1)
    page.screenshot(path=str(screenshot_dir / "drop-on-edge.png"))
    page.mouse.up()
    page.wait_for_function(f"{count} === 7")
    expect(page.locator(".x6-edge.drop-target")).to_have_count(0)
    edges = page.evaluate(_EDGES)
    assert "start:out>update_profile_1" in edges
    assert "update_profile_1:out>wait" in edges
    assert "start:out>wait" not in edges
    expect(page.locator("#save-status")).to_have_text("Saved · revision 2")
    _apart(page.evaluate(_BOXES))

    page.keyboard.press("Control+z")  # one undo: step and both edges
    page.wait_for_function(f"{count} === 6")
    assert page.evaluate(_EDGES) == before

    # A step on the canvas with no edge yet, dragged onto an edge.
    page.locator('#palette [data-node-type="wait"]').click()
    page.wait_for_function(f"{count} === 7")
    page.locator('[data-node-id="wait_1"] .step-summary').hover()
    page.mouse.down()
    x, y = page.evaluate(_EDGE_MIDDLE, ["vip", "true"])
    page.mouse.move(x, y - 10, steps=10)
    page.mouse.move(x, y, steps=2)
    expect(page.locator(".x6-edge.drop-target")).to_have_count(1)
    page.mouse.up()
    page.wait_for_function(
        """() => window.throughlineDesigner.graph.getEdges().some(
             (e) => e.getSourceCellId() === "wait_1")"""
    )
    edges = page.evaluate(_EDGES)
    assert "vip:true>wait_1" in edges and "wait_1:out>call" in edges
    assert "vip:true>call" not in edges
    expect(page.locator("#problem-count")).to_have_text("No problems")
    page.keyboard.press("Control+z")
    page.wait_for_function(
        """() => !window.throughlineDesigner.graph.getEdges().some(
             (e) => e.getSourceCellId() === "wait_1")"""
    )
    assert "vip:true>call" in page.evaluate(_EDGES)
    assert errors == []


def test_names_printed_empty_in_real_sends_show_on_the_step_and_its_form(
    page: Page, live_server, session, settings, screenshot_dir
):
    load_demo(session, SecretBox(settings.encryption_key))
    journey = session.scalars(
        select(Journey).where(Journey.name == "Cart recovery")
    ).one()
    for name, amount in (("customer.first_name", 12), ("event.properties.x", 1)):
        counters.add(
            session,
            Metric.EMPTY,
            utcnow(),
            journey_id=journey.id,
            node_id="mail",
            label=name,
            amount=amount,
        )
    session.commit()
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    badge = page.locator('[data-node-id="mail"] .step-empty')
    expect(badge).to_contain_text("12 empty")
    expect(badge).to_have_attribute(
        "title",
        "12 messages had an empty [first_name] in the last 7 days\n"
        "1 message had an empty [x] in the last 7 days",
    )
    page.locator('[data-node-id="mail"] .step-summary').click()
    expect(page.locator("#node-panel .empty-sends")).to_contain_text(
        "12 messages had an empty [first_name] in the last 7 days"
    )
    page.screenshot(path=str(screenshot_dir / "empty-personalisation.png"))
    assert errors == []


def test_a_name_picked_under_a_template_goes_in_where_the_cursor_is(
    page: Page, live_server, session, settings
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    page.locator('[data-node-id="mail"] .step-summary').click()
    panel = page.locator("#node-panel")
    template = panel.get_by_label("Template of subject")
    template.fill("Still thinking, ?")
    template.evaluate("(box) => box.setSelectionRange(16, 16)")
    picker = panel.get_by_label("Insert a customer or event name into subject")
    expect(picker.locator("option[value='customer.traits.first_name']")).to_have_count(
        1
    )
    expect(picker.locator("option[value='customer.email']")).to_have_count(1)
    picker.select_option("customer.traits.first_name")
    expect(template).to_have_value("Still thinking, {{ customer.traits.first_name }}?")
    expect(picker).to_have_value("")
    expect(panel.locator(".preview").first).not_to_contain_text("Still thinking, ?")
    expect(panel.locator(".pending")).to_be_visible()  # saved on the way out, as typed
    # The send's form, its pickers and the "+" below the outputs pass axe's checks.
    assert serious_violations(page) == []
    assert errors == []


def test_the_preview_is_for_the_customer_picked_by_search_on_every_step(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    page.locator('[data-node-id="mail"] .step-summary').click()
    panel = page.locator("#node-panel")
    # htmx binds the form's triggers once it has settled; keys before that go unheard.
    expect(panel.locator('[data-panel-node="mail"]')).to_be_attached()
    _settled(page)
    template = panel.get_by_label("Template of subject")
    template.fill("Hi {{ customer.traits.first_name }}")
    template.press("End")  # previews follow the keys typed
    preview = panel.locator(".preview").first
    status = panel.locator("#sample-status")
    expect(preview).to_contain_text("Hi Katherine")
    expect(status).to_have_text(
        "Previews use the newest customer, katherine@example.com."
    )

    # By keyboard: type in the search box, Tab to the list, an arrow key picks.
    panel.get_by_text("Preview for another customer").click()
    search = panel.get_by_label("Find a customer by email, phone, id or profile number")
    search.focus()
    # One input event, so one search answers: a slower earlier answer could otherwise
    # replace the list after the arrow key chose from it.
    search.fill("ada@")
    picked = panel.get_by_label("Preview for", exact=True)
    expect(picked.locator("option")).to_have_text(
        ["The newest customer", re.compile(r"Ada, ada@example\.com \(#\d+\)")]
    )
    _settled(page)
    page.keyboard.press("Tab")
    expect(picked).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(preview).to_contain_text("Hi Ada")
    expect(status).to_contain_text("Previews use ada@example.com")
    traits = panel.get_by_label("Their traits for the preview (JSON)")
    expect(traits).to_have_value(re.compile(r'"first_name": "Ada"'))
    panel.locator(".sample").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "preview-customer.png"))

    # By phone number as people write it, and a search that finds no one.
    search.fill("+1 555 0177")
    expect(picked.locator("option")).to_contain_text(["Alan, +15550177"])
    search.fill("nobody@")
    expect(picked.locator("option[disabled]")).to_have_text(
        "No customer matches “nobody@”"
    )
    expect(picked).to_contain_text("Ada, ada@example.com")  # still the one chosen

    # Typed traits still try other values.
    traits.fill('{"first_name": "Kay"}')
    traits.press("End")
    expect(preview).to_contain_text("Hi Kay")
    expect(status).to_contain_text("with the sample traits below")

    # Another step of the journey previews for the same customer, also after a reload.
    page.locator('[data-node-id="call"] .step-summary').click()
    expect(panel.get_by_role("heading", name="Send")).to_be_visible()
    expect(panel.locator('[data-panel-node="call"]')).to_be_attached()
    expect(panel.locator(".preview").first).to_contain_text("Call Ada")
    expect(panel.locator("#sample-status")).to_contain_text("ada@example.com")
    page.reload()
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    page.locator('[data-node-id="mail"] .step-summary').click()
    expect(panel.locator("#sample-status")).to_contain_text("ada@example.com")
    assert serious_violations(page) == []
    assert errors == []
