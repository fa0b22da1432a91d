import json
import re
from contextlib import suppress
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import select

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import Journey, Role
from tests.browser.test_pages import _sign_in
from tests.factories import make_user


def _center(page: Page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box, f"{selector} is not on the page"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _drag(page: Page, source: str, target: str) -> None:
    page.mouse.move(*_center(page, source))
    page.mouse.down()
    x, y = _center(page, target)
    page.mouse.move(x, y + 3, steps=12)
    page.mouse.move(x, y, steps=3)
    page.mouse.up()


# How far (in px) the minimap's frame is from the visible part of the canvas, drawn to the
# minimap's scale: each edge of the frame against the canvas area mapped into the minimap.
_FRAME_ERROR = """() => {
  const graph = window.throughlineDesigner.graph;
  const map = graph.getPlugin("minimap");
  const target = map.targetGraph;
  const s = target.transform.getScale().sx;
  const t = target.translate();
  const svg = target.container.getBoundingClientRect();
  const area = graph.getGraphArea();
  const want = [svg.left + area.x * s + t.tx, svg.top + area.y * s + t.ty,
                area.width * s, area.height * s];
  const element = document.querySelector("#minimap .x6-widget-minimap-viewport");
  const frame = element.getBoundingClientRect(); // the inside of its border
  const got = [frame.left + element.clientLeft, frame.top + element.clientTop,
               element.clientWidth, element.clientHeight];
  return Math.max(...want.map((value, i) => Math.abs(value - got[i])));
}"""


# The steps that something floating over the canvas (the map, the step list, the toolbar)
# covers, even in part.
_HIDDEN_STEPS = """() => {
    const over = ["#minimap", "#palette", ".stage .toolbar"].map(
      (s) => document.querySelector(s).getBoundingClientRect());
    const meets = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    return [...document.querySelectorAll("#canvas [data-node-id]")]
      .filter((step) => over.some((box) => meets(step.getBoundingClientRect(), box)))
      .map((step) => step.dataset.nodeId);
  }"""


def _settled(page: Page, measure: str, done: str) -> Any:
    """`measure`'s value once `done` holds for it, or after 5 s: the canvas and its map move
    over a few frames after a click."""
    with suppress(PlaywrightTimeoutError):
        page.wait_for_function(f"() => ({done})(({measure})())", timeout=5_000)
    return page.evaluate(measure)


def _frame_error(page: Page) -> float:
    error: float = _settled(page, _FRAME_ERROR, "(error) => error < 1.5")
    return error


def _hidden_steps(page: Page) -> list[str]:
    hidden: list[str] = _settled(page, _HIDDEN_STEPS, "(steps) => steps.length === 0")
    return hidden


def _open_cart_recovery(page: Page, live_server, session, settings):
    """The demo's Cart recovery on the canvas, for a marketer; returns it and page errors."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    load_demo(session, SecretBox(settings.encryption_key))
    make_user(session, Role.marketer, email="marketer@example.com")
    journey = session.scalars(
        select(Journey).where(Journey.name == "Cart recovery")
    ).one()
    _sign_in(page, live_server, "marketer@example.com")
    page.goto(f"{live_server}/journeys/{journey.id}")
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    return journey, errors


def test_the_step_chosen_last_while_the_canvas_saves_is_the_one_whose_form_opens(
    page: Page, live_server, session, settings
):
    _journey, errors = _open_cart_recovery(page, live_server, session, settings)
    held: list[Any] = []
    page.route("**/draft.json", lambda route: held.append(route))  # saves wait
    asked: list[str] = []
    page.on(
        "request",
        lambda r: (
            asked.append(r.url) if r.method == "GET" and "/nodes/" in r.url else None
        ),
    )
    page.get_by_role("button", name="Arrange").click()  # new positions: a save
    page.locator('#canvas [data-node-id="vip"]').click()  # its form waits for the save
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the canvas did not save"
    page.locator('#canvas [data-node-id="mail"]').click()  # chosen while it still saves
    for route in held:
        route.continue_()
    page.unroute("**/draft.json")
    panel = page.locator("#node-panel")
    expect(panel.locator('[data-panel-node="mail"]')).to_be_attached()
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )
    page.wait_for_timeout(500)  # a late form would have been asked for by now
    expect(panel.locator('[data-panel-node="mail"]')).to_be_attached()
    assert not [url for url in asked if "/nodes/vip" in url]
    assert errors == []


def test_add_connect_undo_and_autosave_on_the_canvas(
    page: Page, live_server, session, settings, screenshot_dir
):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    load_demo(session, SecretBox(settings.encryption_key))
    make_user(session, Role.marketer, email="marketer@example.com")
    journey = session.scalars(
        select(Journey).where(Journey.name == "Cart recovery")
    ).one()
    _sign_in(page, live_server, "marketer@example.com")
    page.get_by_role("link", name="Cart recovery", exact=True).click()
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    nodes = page.locator("#canvas [data-node-id]")
    expect(nodes).to_have_count(6)
    expect(page.locator('#canvas [data-node-id="vip"]')).to_have_attribute(
        "data-node-type", "condition"
    )
    expect(page.locator("#palette [data-node-type]")).to_have_count(12)
    expect(page.locator("#problem-count")).to_have_text("No problems")

    page.locator('#palette [data-node-type="wait"]').click()
    expect(nodes).to_have_count(7)
    expect(page.locator('#canvas [data-node-id="wait_1"]')).to_be_visible()
    expect(page.locator("#save-status")).to_have_text("Saved · revision 2")
    expect(page.locator("#problems")).to_contain_text(
        "Wait 1 hour: no path from the trigger"
    )

    page.get_by_role("button", name="Undo").click()
    expect(nodes).to_have_count(6)
    expect(page.locator("#save-status")).to_have_text("Saved · revision 3")
    expect(page.locator("#problem-count")).to_have_text("No problems")
    page.get_by_role("button", name="Redo").click()
    expect(nodes).to_have_count(7)
    expect(page.locator("#save-status")).to_have_text("Saved · revision 4")

    page.get_by_role("button", name="Arrange").click()
    page.locator('#canvas [data-node-id="wait_1"]').click()
    panel_problems = page.locator("#node-panel ul.problems")
    expect(panel_problems).to_contain_text("no path from the trigger")
    _drag(
        page,
        '[data-node-id="mail"] [port="out:error"]',
        '[data-node-id="wait_1"] [port="in"]',
    )
    _drag(
        page,
        '[data-node-id="wait_1"] [port="out:out"]',
        '[data-node-id="end"] [port="in"]',
    )
    expect(page.locator("#problem-count")).to_have_text("No problems")
    expect(panel_problems).to_have_count(0)  # the open form forgets what is fixed
    # A journey that fits the view opens without the map; asked for, the map's frame shows
    # what the canvas shows, also after the journey changed under it.
    expect(page.locator("#minimap")).to_be_hidden()
    page.get_by_role("button", name="Map").click()
    expect(page.get_by_role("button", name="Map")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator("#minimap .x6-widget-minimap-viewport")).to_be_attached()
    assert _frame_error(page) < 1.5
    page.get_by_role("button", name="Zoom in").click()
    assert _frame_error(page) < 1.5
    page.get_by_role("button", name="Fit").click()
    # Fit puts every step clear of what floats over the canvas: the map, the step list and
    # the toolbar.
    assert _hidden_steps(page) == []
    page.screenshot(path=str(screenshot_dir / "canvas.png"))

    saved = json.loads(
        page.request.get(f"{live_server}/journeys/{journey.id}/draft.json").text()
    )
    edges = saved["document"]["edges"]
    assert {"from": "mail", "port": "error", "to": "wait_1"} in edges
    assert {"from": "wait_1", "to": "end"} in edges
    assert saved["problems"] == []
    assert "wait_1" in saved["document"]["layout"]

    page.get_by_role("button", name="Publish…").click()
    expect(
        page.get_by_role("heading", name="What changes from version 1")
    ).to_be_visible()
    expect(page.locator(".changes")).to_contain_text("Added: Wait Wait 1 hour")
    page.screenshot(path=str(screenshot_dir / "publish.png"))
    page.get_by_role("button", name="Publish version 2").click()
    expect(page.get_by_text("Published version 2 of “Cart recovery”")).to_be_visible()
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    expect(page.locator('#canvas [data-node-id="wait_1"]')).to_be_visible()
    assert errors == []


def test_selecting_a_step_opens_its_form_and_saving_it_updates_the_canvas(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)

    page.locator('#canvas [data-node-id="wait"]').click()
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name="Wait for event")).to_be_visible()
    expect(panel.get_by_label("Event to wait for")).to_have_value("order_completed")
    expect(panel.get_by_label("Give up after")).to_have_value("1")
    panel.get_by_label("Give up after").fill("3")
    panel.get_by_label("Unit").select_option("days")
    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()
    expect(page.locator("#save-status")).to_have_text("Saved · revision 2")

    page.locator('#canvas [data-node-id="vip"]').click()
    expect(panel.get_by_role("heading", name="Condition")).to_be_visible()
    expect(panel.get_by_label("Field", exact=True)).to_have_value(
        "customer.traits.tier"
    )
    panel.get_by_role("button", name="Edit as JSON").click()
    rule_box = panel.get_by_label("Take the true path when")
    rule_box.fill('{"field": "customer.traits.tier", "op": "nearly"')
    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("This is not JSON")).to_be_visible()
    rule_box.fill('{"field": "customer.traits.tier", "op": "nearly", "value": "vip"}')
    panel.get_by_role("button", name="Save step").click()
    expect(page.locator("#problems")).to_contain_text(
        "If tier ? vip: “nearly” is not a comparison"
    )
    expect(page.locator("#problem-count")).to_have_text("1 problem")
    expect(panel.get_by_text("“nearly” is not a comparison")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "side-panel.png"))
    rule_box.fill("")
    panel.get_by_role("button", name="Use the builder").click()
    expect(panel.get_by_role("button", name="Edit as JSON")).to_be_focused()
    page.wait_for_function("() => !document.querySelector('.htmx-settling')")
    panel.get_by_label("Comparison").select_option("is at least")
    expect(panel.get_by_label("Type")).to_have_value("number")
    panel.get_by_label("Field", exact=True).fill("customer.traits.orders")
    panel.get_by_label("Value", exact=True).fill("3")
    panel.get_by_role("button", name="Save step").click()
    expect(page.locator("#problem-count")).to_have_text("No problems")

    saved = json.loads(
        page.request.get(f"{live_server}/journeys/{journey.id}/draft.json").text()
    )
    wait = next(n for n in saved["document"]["nodes"] if n["id"] == "wait")
    assert wait["config"]["timeout"] == "P3D"
    assert saved["revision"] == 4
    vip = next(n for n in saved["document"]["nodes"] if n["id"] == "vip")
    assert vip["config"]["rule"] == {
        "field": "customer.traits.orders",
        "op": "gte",
        "value": 3,
    }
    assert errors == []


def test_a_live_journey_shows_counts_on_its_steps_without_a_reload(
    page: Page,
    live_server,
    client,
    session,
    settings,
    redis_client,
    engine_runtime,
    screenshot_dir,
):
    from tests.world import CART, World, sample

    world = World(client, session, settings, redis_client, {})
    journey = world.publish(sample())
    make_user(session, Role.viewer, email="viewer@example.com")
    entered = iter(range(1000))

    def enter(count: int) -> None:
        """Customers abandon carts on the web site; the engine takes them in."""
        for _ in range(count):
            world.post({**CART, "customer": {"id": f"browser-{next(entered)}"}})

    def figures(node: str | None = None) -> dict:
        answer = page.request.get(f"{live_server}/journeys/{journey.id}/counts")
        found = json.loads(answer.headers["hx-trigger"])["liveCounts"]
        return found["nodes"][node] if node else found

    enter(2)
    _sign_in(page, live_server, "viewer@example.com")
    page.goto(f"{live_server}/journeys/{journey.id}")
    assert figures("wait")["waiting"] == 2 and figures("start")["completed"] == 2
    wait = page.locator('#canvas [data-node-id="wait"]')
    expect(wait).to_have_attribute("data-waiting", "2")
    expect(page.locator('#canvas [data-node-id="start"]')).to_have_attribute(
        "data-completed", "2"
    )
    # The cards say it in words: arrivals (and their share of the step before, when some
    # were lost on the way) in the head, where the customers are below; a step no one
    # reached shows zeros.
    expect(wait.locator(".step-in")).to_have_text("2 in")
    expect(wait.locator(".step-in")).to_have_attribute(
        "title", "100% of those who reached the step before"
    )
    expect(wait).to_contain_text("2 waiting")
    expect(page.locator('#canvas [data-node-id="vip"]')).to_contain_text("0 in · 0%")
    expect(page.locator('#canvas [data-node-id="mail"]')).to_contain_text(
        "0 delivered0 suppressed0 failed"
    )
    page.evaluate("window.stillHere = true")
    enter(1)
    expect(wait).to_have_attribute("data-waiting", "3", timeout=12_000)
    expect(wait).to_contain_text("3 waiting")
    expect(page.locator("#live-figures")).to_contain_text("3 in it now")
    page.screenshot(path=str(screenshot_dir / "live-counts.png"))
    assert (
        page.evaluate("window.stillHere") is True
    )  # counted without reloading the page


def test_a_simulation_lights_the_path_and_shows_the_rendered_messages(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)

    page.get_by_text("Simulate", exact=True).click()
    # The sample's first event is already there: the trigger's, now, with details that
    # meet the trigger's condition.
    expect(page.get_by_label("Events, one per line")).to_have_value(
        'now cart_abandoned {"cart_value": 50}'
    )
    # An event that does not meet it: the result says what the trigger asks for.
    page.get_by_label("Events, one per line").fill("now cart_abandoned")
    page.get_by_role("button", name="Run simulation").click()
    result = page.locator("#sim-result")
    expect(result).to_contain_text("Did not enter the journey, 0 steps, 0 messages.")
    expect(result).to_contain_text(
        "No event met the trigger: When cart_abandoned where cart_value ≥ 50."
    )
    page.get_by_label("Events, one per line").fill(
        'now cart_abandoned {"cart_value": 120.5}'
    )
    page.get_by_role("button", name="Run simulation").click()
    expect(result).to_contain_text("Ends completed")
    # Steps are named by what they do, and how they went on as their edges say it.
    expect(result.locator("li[data-step]").first).to_contain_text(
        "When cart_abandoned where cart_value ≥ 50: went on"
    )
    expect(result).to_contain_text(
        "Send via Support desk: Call [first_name] → support-desk"
    )
    expect(result).to_contain_text("Call Ada")
    expect(result.locator("li.lit")).to_have_count(
        result.locator("li[data-step]").count(), timeout=10_000
    )
    page.screenshot(path=str(screenshot_dir / "simulation.png"))

    # The traits are a small table: change a value, remove a row, add one.
    page.get_by_label("Value of trait 2").fill("standard")
    page.get_by_role("button", name="Remove trait 1").click()
    expect(page.get_by_label("Name of trait 1")).to_have_value("tier")
    expect(page.get_by_label("Name of trait 1")).to_be_focused()
    page.get_by_role("button", name="+ Add a trait").click()
    expect(page.get_by_label("Name of trait 2")).to_be_focused()
    page.keyboard.type("orders")
    page.keyboard.press("Tab")
    page.keyboard.type("3")
    page.get_by_role("button", name="Run simulation").click()
    expect(result).to_contain_text("Still thinking? → email")
    # The same traits as JSON, and back.
    page.get_by_role("button", name="Edit the traits as JSON").click()
    as_json = page.get_by_label("Customer traits as JSON")
    expect(as_json).to_be_focused()
    assert json.loads(as_json.input_value()) == {"tier": "standard", "orders": 3}
    as_json.fill('{"tier": "standard", "first_name": "Grace"}')
    page.get_by_role("button", name="Edit the traits in a table").click()
    expect(page.get_by_label("Value of trait 2")).to_have_value("Grace")
    # Times in words: the order two hours later, inside the hour's wait? No: it timed out.
    page.get_by_label("Events, one per line").fill(
        'now cart_abandoned {"cart_value": 80}\n2 hours order_completed'
    )
    page.get_by_role("button", name="Run simulation").click()
    expect(result).to_contain_text("Still thinking? → email")
    page.get_by_label("Events, one per line").fill("soon cart_abandoned")
    page.get_by_role("button", name="Run simulation").click()
    expect(page.locator("#sim-error")).to_contain_text(
        'Line 1: write when it comes, then the event, e.g. "now cart_abandoned"'
    )
    assert errors == []


def test_connect_a_step_with_the_keyboard(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    draft_url = f"{live_server}/journeys/{journey.id}/draft.json"
    page.locator('#palette [data-node-type="wait"]').press("Enter")
    expect(page.locator('#canvas [data-node-id="wait_1"]')).to_be_visible()
    expect(page.locator("#problems")).to_contain_text(
        "Wait 1 hour: no path from the trigger"
    )
    page.locator("#canvas").focus()
    page.keyboard.press("c")
    dialog = page.get_by_role("dialog", name="Connect Wait 1 hour")
    expect(dialog).to_be_visible()
    expect(page.locator("#connect-port option")).to_have_text(["out"])
    expect(page.locator("#connect-port")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.keyboard.press("c")
    expect(dialog).to_be_visible()
    page.get_by_label("To the step").select_option(label="End the journey")
    page.screenshot(path=str(screenshot_dir / "connect-dialog.png"))
    page.get_by_label("To the step").press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#save-status")).to_have_text("Saved · revision 3")
    saved = json.loads(page.request.get(draft_url).text())
    assert {"from": "wait_1", "to": "end"} in saved["document"]["edges"]
    assert not any(
        p.get("node") == "wait_1" and "out" in p["message"] for p in saved["problems"]
    )

    # Its only output is taken now: the dialog says so and offers nothing.
    page.keyboard.press("c")
    expect(
        dialog.get_by_text("Every output of this step is already connected")
    ).to_be_visible()
    expect(dialog.get_by_role("button", name="Connect")).to_be_disabled()
    page.keyboard.press("Escape")

    page.keyboard.press("Control+z")
    expect(page.locator("#save-status")).to_have_text("Saved · revision 4")
    saved = json.loads(page.request.get(draft_url).text())
    assert {"from": "wait_1", "to": "end"} not in saved["document"]["edges"]
    assert errors == []


def test_a_sticky_note_is_added_typed_moved_kept_and_deleted(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    draft_url = f"{live_server}/journeys/{journey.id}/draft.json"
    page.get_by_role("button", name="Note").click()
    note = page.locator('#canvas [data-note-id="note_1"]')
    expect(note).to_be_visible()
    page.get_by_label("Text").fill("Ask legal about the wording")
    expect(note).to_contain_text("Ask legal")
    expect(page.locator("#save-status")).to_have_text("Saved · revision 2")
    before = note.bounding_box()
    assert before
    page.mouse.move(before["x"] + 20, before["y"] + 20)
    page.mouse.down()
    page.mouse.move(before["x"] - 60, before["y"] + 80, steps=8)
    page.mouse.up()
    expect(page.locator("#save-status")).to_have_text("Saved · revision 3")
    layout = json.loads(page.request.get(draft_url).text())["document"]["layout"]
    (stored,) = layout["notes"]
    assert stored["text"] == "Ask legal about the wording"
    assert "note_1" not in layout  # not a step
    page.screenshot(path=str(screenshot_dir / "sticky-note.png"))

    page.reload()
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    expect(note).to_contain_text("Ask legal")
    expect(page.locator("#canvas [data-node-id]")).to_have_count(6)
    expect(page.locator("#problem-count")).to_have_text("No problems")
    note.click()
    expect(page.get_by_label("Text")).to_have_value("Ask legal about the wording")
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(note).to_have_count(0)
    expect(page.get_by_label("Text")).to_have_count(0)  # the panel forgets the note
    expect(page.locator("#node-panel")).to_contain_text("Select a step")
    expect(page.locator("#save-status")).to_have_text("Saved · revision 4")
    layout = json.loads(page.request.get(draft_url).text())["document"]["layout"]
    assert "notes" not in layout
    assert errors == []


def test_a_label_and_a_changed_config_show_on_the_step_at_once(
    page: Page, live_server, session, settings
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    wait = page.locator('#canvas [data-node-id="wait"]')
    expect(wait).to_contain_text("Wait for event")
    expect(wait).to_contain_text("Wait for order_completed, up to 1 hour")
    wait.click()
    panel = page.locator("#node-panel")
    panel.get_by_label("Label").fill("Give them time to buy")
    panel.get_by_label("Give up after").fill("3")
    panel.get_by_label("Unit").select_option("days")
    panel.get_by_role("button", name="Save step").click()
    expect(wait).to_contain_text("Give them time to buy")
    expect(wait).to_contain_text("Wait for order_completed, up to 3 days")
    # The edge that follows the event keeps saying which event it is.
    expect(
        page.locator("#canvas .x6-edge-label", has_text="got order_completed")
    ).to_have_count(1)
    saved = json.loads(
        page.request.get(f"{live_server}/journeys/{journey.id}/draft.json").text()
    )
    node = next(n for n in saved["document"]["nodes"] if n["id"] == "wait")
    assert node["label"] == "Give them time to buy"

    # Moving the step saves the draft from the canvas: the label stays.
    revision = saved["revision"]
    box = wait.bounding_box()
    assert box
    page.mouse.move(box["x"] + 60, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 140, box["y"] + 30, steps=6)
    page.mouse.up()
    expect(page.locator("#save-status")).to_have_text(
        f"Saved · revision {revision + 1}"
    )
    saved = json.loads(
        page.request.get(f"{live_server}/journeys/{journey.id}/draft.json").text()
    )
    node = next(n for n in saved["document"]["nodes"] if n["id"] == "wait")
    assert node["label"] == "Give them time to buy"
    assert errors == []


def test_undo_puts_an_edge_back_with_its_words(
    page: Page, live_server, session, settings
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    labels = page.locator("#canvas .x6-edge-label")
    expect(labels.filter(has_text="yes")).to_have_count(1)
    true_port = page.locator('[data-node-id="vip"] [port="out:true"]')
    # Deleting the edge names the port again under the step ...
    page.evaluate(
        """() => { const g = window.throughlineDesigner.graph;
                   g.getEdges().find((e) => e.getSourcePortId() === "out:true").remove(); }"""
    )
    expect(labels.filter(has_text="yes")).to_have_count(0)
    expect(
        page.locator('[data-node-id="vip"] .x6-port-label', has_text="yes")
    ).to_have_count(1)
    # ... and undoing it gives the words back to the edge, not to both.
    page.get_by_role("button", name="Undo").click()
    expect(labels.filter(has_text="yes")).to_have_count(1)
    expect(
        page.locator('[data-node-id="vip"] .x6-port-label', has_text="yes")
    ).to_have_count(0)
    expect(true_port).to_be_attached()
    assert errors == []


# Every edge as the points it is drawn through, and every step's box, in the journey's
# coordinates; then what a reader would trip over: a segment running under a step that is not
# its own end, and two edges leaving the same step that cross.
_GEOMETRY = """() => {
  const g = window.throughlineDesigner.graph;
  const steps = g.getNodes().filter((n) => n.getData().type).map((n) => {
    const b = n.getBBox(); return { id: n.id, x: b.x, y: b.y, w: b.width, h: b.height };
  });
  const edges = g.getEdges().map((e) => {
    const view = g.findViewByCell(e);
    const points = [view.sourcePoint, ...view.routePoints, view.targetPoint];
    return { from: e.getSourceCellId(), to: e.getTargetCellId(), port: e.getSourcePortId(),
             points: points.map((p) => [p.x, p.y]) };
  });
  return { steps, edges };
}"""


def _crosses_box(a, b, box, margin=2.0):
    """Whether the axis-parallel or straight segment a-b passes inside `box` (shrunk)."""
    left, top = box["x"] + margin, box["y"] + margin
    right, bottom = box["x"] + box["w"] - margin, box["y"] + box["h"] - margin
    for i in range(21):  # sample the segment: it is short and the boxes are large
        x = a[0] + (b[0] - a[0]) * i / 20
        y = a[1] + (b[1] - a[1]) * i / 20
        if left < x < right and top < y < bottom:
            return True
    return False


def _segments_cross(p, q, r, s):
    def orient(a, b, c):
        value = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (value > 1e-6) - (value < -1e-6)

    return (
        orient(p, q, r) * orient(p, q, s) < 0 and orient(r, s, p) * orient(r, s, q) < 0
    )


@pytest.mark.parametrize(
    "starter", ["cart_recovery", "vip_routing", "onboarding", "form_resume"]
)
def test_arrange_keeps_edges_clear_of_steps_and_branches_apart(
    page: Page, live_server, session, settings, starter
):
    from engine.journeys import lifecycle, starters

    make_user(session, Role.viewer, email="viewer@example.com")
    document = starters.document(starter)
    document["layout"] = {}  # arranged when opened
    journey, _ = lifecycle.create_journey(
        session, document, lifecycle.check_context(session), None, allow_problems=True
    )
    session.commit()
    _sign_in(page, live_server, "viewer@example.com")
    page.goto(f"{live_server}/journeys/{journey.id}")
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    page.get_by_role("button", name="Fit").click()  # every edge drawn
    found = page.evaluate(_GEOMETRY)
    under = []
    for edge in found["edges"]:
        points = edge["points"]
        for step in found["steps"]:
            if step["id"] in (edge["from"], edge["to"]):
                continue
            if any(
                _crosses_box(a, b, step)
                for a, b in zip(points, points[1:], strict=False)
            ):
                under.append((edge["from"], edge["port"], step["id"]))
    assert under == []
    crossing = []
    for i, one in enumerate(found["edges"]):
        for two in found["edges"][i + 1 :]:
            if one["from"] != two["from"]:
                continue
            for a, b in zip(one["points"], one["points"][1:], strict=False):
                for c, d in zip(two["points"], two["points"][1:], strict=False):
                    if _segments_cross(a, b, c, d):
                        crossing.append((one["from"], one["port"], two["port"]))
    assert crossing == []
    # Branches leave in the order of their ports: the first port's target is left of the
    # second's wherever they are on the same row.
    boxes = {step["id"]: step for step in found["steps"]}
    for node in document["nodes"]:
        ports = [e for e in found["edges"] if e["from"] == node["id"]]
        by_port = {e["port"]: boxes[e["to"]] for e in ports}
        names = [p for p in (f"out:{x}" for x in _port_order(node)) if p in by_port]
        for left, right in zip(names, names[1:], strict=False):
            a, b = by_port[left], by_port[right]
            if a is not b and abs(a["y"] - b["y"]) < 1:
                assert a["x"] < b["x"], (node["id"], left, right)


def _port_order(node):
    from engine.language import nodes

    return [port.name for port in nodes.get(node["type"]).ports(node["config"])]


def test_new_steps_land_apart_in_view_and_the_view_moves_by_hand(
    page: Page, live_server, session, settings
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    canvas = page.locator("#canvas")
    count = "window.throughlineDesigner.graph.getNodes().length"
    # Added with a step selected: below it, never on another step, and in view.
    page.locator('#canvas [data-node-id="end"]').click()
    for type_name in ("wait", "send", "exit"):
        page.locator(f'#palette [data-node-type="{type_name}"]').click()
    page.wait_for_function(f"{count} === 9")
    boxes = page.evaluate(
        """() => window.throughlineDesigner.graph.getNodes().map((n) => {
             const b = n.getBBox(); return [n.id, b.x, b.y, b.width, b.height]; })"""
    )
    for i, (one, x1, y1, w1, h1) in enumerate(boxes):
        for two, x2, y2, w2, h2 in boxes[i + 1 :]:
            apart = x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
            assert apart, (one, two)
    area = canvas.bounding_box()
    assert area
    for node_id in ("wait_1", "send_1", "exit_1"):
        box = page.locator(f'#canvas [data-node-id="{node_id}"]').bounding_box()
        assert (
            box
            and area["y"] <= box["y"]
            and box["y"] + box["height"] <= area["y"] + area["height"]
        )
    # Undo right after adding from the step list takes the step away.
    expect(page.locator("#save-status")).to_have_text(
        re.compile(r"Saved · revision \d+")
    )
    page.keyboard.press("Control+z")
    page.wait_for_function(f"{count} === 8")

    # Dragging the background moves the view; the wheel zooms.
    moved = page.evaluate("window.throughlineDesigner.graph.translate()")
    page.mouse.move(area["x"] + area["width"] - 60, area["y"] + area["height"] - 60)
    page.mouse.down()
    page.mouse.move(
        area["x"] + area["width"] - 160, area["y"] + area["height"] - 120, steps=6
    )
    page.mouse.up()
    after = page.evaluate("window.throughlineDesigner.graph.translate()")
    assert after["tx"] < moved["tx"] - 50 and after["ty"] < moved["ty"] - 30
    scale = page.evaluate("window.throughlineDesigner.graph.transform.getScale().sx")
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        f"window.throughlineDesigner.graph.transform.getScale().sx > {scale}"
    )
    assert errors == []


def test_a_change_typed_in_a_form_survives_choosing_another_step_and_a_reload(
    page: Page, live_server, session, settings
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    panel = page.locator("#node-panel")
    page.locator('#canvas [data-node-id="wait"]').click()
    expect(panel.get_by_role("heading", name="Wait for event")).to_be_visible()
    panel.get_by_label("Give up after").fill("2")
    expect(panel.locator(".pending")).to_contain_text(
        "saved when you choose another step"
    )
    # No "Save": choosing another step saves it on the way.
    page.locator('#canvas [data-node-id="vip"]').click()
    expect(panel.get_by_role("heading", name="Condition")).to_be_visible()
    expect(page.locator('#canvas [data-node-id="wait"]')).to_contain_text(
        "Wait for order_completed, up to 2 hours"
    )
    # A change that cannot be saved keeps the panel on its step, fields marked.
    page.locator('#canvas [data-node-id="wait"]').click()
    expect(panel.get_by_role("heading", name="Wait for event")).to_be_visible()
    panel.get_by_label("Give up after").fill("0")
    page.locator('#canvas [data-node-id="vip"]').click()
    expect(panel.get_by_role("heading", name="Wait for event")).to_be_visible()
    expect(page.locator("#save-status")).to_contain_text("fix the fields marked")
    assert panel.get_by_label("Give up after").evaluate(
        "(input) => !input.validity.valid"
    )
    panel.get_by_label("Give up after").fill("3")
    page.get_by_role(
        "button", name="Settings"
    ).click()  # the settings wait for the save too
    expect(panel.get_by_role("heading", name="Journey settings")).to_be_visible()

    page.reload()
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    expect(page.locator('#canvas [data-node-id="wait"]')).to_contain_text(
        "Wait for order_completed, up to 3 hours"
    )
    saved = page.request.get(f"{live_server}/journeys/{journey.id}/draft.json").json()
    wait = next(n for n in saved["document"]["nodes"] if n["id"] == "wait")
    assert wait["config"]["timeout"] == "PT3H"
    assert errors == []


def test_steps_are_reached_and_opened_with_the_keyboard(
    page: Page, live_server, session, settings
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    selected = (
        "window.throughlineDesigner.selection.getSelectedCells().map((c) => c.id)"
    )
    page.locator("#canvas").focus()
    page.keyboard.press("ArrowDown")  # nothing selected: the journey's start
    assert page.evaluate(selected) == ["start"]
    expect(page.locator("#canvas-announce")).to_contain_text("selected: Enter opens it")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(selected) == ["wait"]
    page.keyboard.press("ArrowDown")
    assert page.evaluate(selected) == ["vip"]  # the timed-out branch, straight below
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    assert page.evaluate(selected) == ["mail"]  # "no" is right of "yes"
    page.keyboard.press("Enter")
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name="Send")).to_be_visible()
    expect(panel.get_by_label("Label")).to_be_focused()
    assert errors == []


def test_a_form_open_while_the_canvas_saves_is_saved_on_the_new_revision(
    page: Page, live_server, session, settings
):
    """A step's form loaded, then the canvas saves (Arrange): saving the form goes on from
    the canvas's revision instead of being refused as a change on an older draft."""
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    page.locator('#canvas [data-node-id="wait"]').click()
    panel = page.locator("#node-panel")
    expect(panel.get_by_label("Give up after")).to_have_value("1")
    page.get_by_role("button", name="Arrange").click()
    expect(page.locator("#save-status")).to_have_text("Saved · revision 2")
    panel.get_by_label("Give up after").fill("2")
    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()
    expect(page.locator("#save-status")).to_have_text("Saved · revision 3")
    saved = json.loads(
        page.request.get(f"{live_server}/journeys/{journey.id}/draft.json").text()
    )
    wait = next(n for n in saved["document"]["nodes"] if n["id"] == "wait")
    assert wait["config"]["timeout"] == "PT2H"
    assert errors == []
