"""The side panel's rule builder and message template editor, driven as a marketer would."""

from playwright.sync_api import Page, expect

from engine import accounts
from engine.models import User
from tests.browser.test_canvas import _open_cart_recovery

WANTED = {
    "all": [
        {"field": "customer.traits.vip", "op": "eq", "value": True},
        {
            "any": [
                {"field": "event.properties.total", "op": "gt", "value": 100},
                {"field": "event.properties.items", "op": "contains", "value": "shoes"},
            ]
        },
    ]
}


def _choose(page: Page, select, value: str) -> None:
    """Pick an option whose change the server answers with a new panel; wait for it."""
    _settled(page)
    with page.expect_response(lambda r: r.request.method == "POST"):
        select.select_option(value)
    _settled(page)


def _settled(page: Page) -> None:
    """Wait until htmx has finished every request and swap of the panel."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )


def _scroll_side_to(page: Page, selector: str) -> None:
    """Scroll the side column (not the page) so that `selector` starts at its top."""
    page.locator(selector).evaluate(
        "el => { const side = el.closest('.side');"
        " side.scrollTop += el.getBoundingClientRect().top - side.getBoundingClientRect().top - 8; }"
    )


def _api_journey(page: Page, live_server: str, session, journey_id: int) -> dict:
    """The journey as a script reads it: GET /api/v1/journeys/<id>, draft and live."""
    session.rollback()  # let go of the read snapshot before writing
    user = session.query(User).filter_by(email="marketer@example.com").one()
    token = accounts.create_token(session, user, "browser test")
    session.commit()
    answer = page.request.get(
        f"{live_server}/api/v1/journeys/{journey_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.ok, answer.text()
    return answer.json()


def _api_draft(page: Page, live_server: str, session, journey_id: int) -> dict:
    return _api_journey(page, live_server, session, journey_id)["draft"]


def test_build_a_nested_rule_with_keyboard_and_mouse(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    page.locator('#canvas [data-node-id="vip"]').click()
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name="Condition")).to_be_visible()
    first = panel.locator("#n-vip-rule-0-0-field")
    expect(first).to_have_value("customer.traits.tier")

    # the first condition, by keyboard: customer.traits.vip is true
    first.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("customer.traits.vip")
    page.keyboard.press("Tab")  # to the remove button
    page.keyboard.press("Tab")  # to the comparison
    expect(panel.locator("#n-vip-rule-0-0-op")).to_be_focused()
    page.keyboard.press("Tab")
    expect(panel.locator("#n-vip-rule-0-0-type")).to_be_focused()
    _choose(page, panel.locator("#n-vip-rule-0-0-type"), "boolean")
    value = panel.locator("select#n-vip-rule-0-0-value")
    expect(value).to_be_visible()
    expect(
        panel.locator("#n-vip-rule-0-0-type")
    ).to_be_focused()  # kept across the swap
    value.select_option("true")

    # a group, with the mouse; the new condition's field takes the keyboard
    panel.get_by_role("button", name="+ Group").click()
    expect(panel.locator("#n-vip-rule-0-1-0-field")).to_be_focused()
    page.keyboard.type("event.properties.total")
    _choose(page, panel.locator("#n-vip-rule-0-1-kind"), "any")
    expect(panel.locator("#n-vip-rule-0-1")).to_have_class("rule-group kind-any")
    _choose(page, panel.locator("#n-vip-rule-0-1-0-op"), "is more than")
    expect(panel.locator("#n-vip-rule-0-1-0-type")).to_have_value("number")
    panel.locator("#n-vip-rule-0-1-0-value").fill("100")

    # a second condition in the group, by keyboard
    panel.locator("#n-vip-rule-0-1-add").focus()
    page.keyboard.press("Enter")
    expect(panel.locator("#n-vip-rule-0-1-1-field")).to_be_focused()
    page.keyboard.type("event.properties.items")
    _choose(page, panel.locator("#n-vip-rule-0-1-1-op"), "contains")
    panel.locator("#n-vip-rule-0-1-1-value").fill("shoes")
    expect(panel.get_by_text("Changed, not saved yet.")).to_be_visible()
    _scroll_side_to(page, "#n-vip-rule")
    page.screenshot(path=str(screenshot_dir / "rule-builder.png"))

    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()
    expect(page.locator("#save-status")).to_have_text("Saved · revision 2")
    draft = _api_draft(page, live_server, session, journey.id)
    vip = next(n for n in draft["nodes"] if n["id"] == "vip")
    assert vip["config"] == {"rule": WANTED}

    # a condition left incomplete is marked where it is, and nothing is saved
    panel.locator("#n-vip-rule-0-add").click()
    expect(panel.locator("#n-vip-rule-0-2-field")).to_be_focused()
    panel.get_by_role("button", name="Save step").click()
    expect(panel.locator("#n-vip-rule-0-2-error")).to_have_text(
        "Name the field to compare, e.g. customer.traits.tier"
    )
    _settled(page)  # the form drawn again binds its buttons once htmx has settled
    panel.get_by_role("button", name="Remove this condition").last.click()
    expect(panel.locator("#n-vip-rule-0-2")).to_have_count(0)
    assert errors == []


def test_a_message_template_previews_as_it_is_typed(
    page: Page, live_server, session, settings, screenshot_dir
):
    journey, errors = _open_cart_recovery(page, live_server, session, settings)
    page.locator('#canvas [data-node-id="mail"]').click()
    panel = page.locator("#node-panel")
    expect(panel.get_by_role("heading", name="Send")).to_be_visible()
    subject = panel.get_by_label("Template of subject")
    expect(subject).to_have_value("Still thinking?")
    preview = panel.locator("#n-mail-message-0-preview")
    expect(preview).to_contain_text("Still thinking?")

    subject.fill("")
    subject.press_sequentially("Still thinking, {{ customer.traits.first_name }}?")
    expect(preview).to_contain_text("Still thinking, Katherine?")  # the newest customer

    panel.get_by_role("button", name="+ Add a field").click()
    name = panel.locator("#n-mail-message-1-name")
    expect(name).to_be_focused()
    page.keyboard.type("body")
    body = panel.locator("#n-mail-message-1-template")
    body.click()
    page.keyboard.type("Hi {{ customer.traits.first_name }},\n")
    page.keyboard.type(
        "your {{ trigger.properties.items }} items ({{ trigger.properties.cart_value }}"
    )
    page.keyboard.type(
        " USD) are waiting.\n{% if customer.traits.tier == 'vip' %}Free shipping"
    )
    second = panel.locator("#n-mail-message-1-preview")
    expect(second).to_contain_text("Line 3:")
    expect(second).to_contain_text("is never closed: add {% endif %}")
    page.keyboard.type(" for you.{% endif %}")
    expect(second).to_contain_text("Free shipping for you.")
    expect(second).to_contain_text("your 3 items (120.5 USD)")
    page.keyboard.type("\nSee you soon {{ customer.traits.first_name | upcase")
    expect(second).to_contain_text("Line 4:")
    expect(second).to_contain_text("expected “}}”")
    _scroll_side_to(page, "#n-mail-message-0-preview")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshot_dir / "template-preview.png"))
    page.keyboard.type(" }}.")
    expect(second).to_contain_text("See you soon KATHERINE.")

    panel.locator("summary", has_text="Preview for another customer").click()
    sample = panel.get_by_label("Their traits for the preview (JSON)")
    sample.fill('{"first_name": "Grace", "tier": "standard"}')
    sample.press("End")  # a key press sends the new traits
    expect(preview).to_contain_text("Still thinking, Grace?")
    expect(second).not_to_contain_text("Free shipping")

    panel.get_by_role("button", name="Save step").click()
    expect(panel.get_by_text("Saved.")).to_be_visible()
    draft = _api_draft(page, live_server, session, journey.id)
    mail = next(n for n in draft["nodes"] if n["id"] == "mail")
    assert mail["config"]["message"] == {
        "subject": "Still thinking, {{ customer.traits.first_name }}?",
        "body": "Hi {{ customer.traits.first_name }},\nyour {{ trigger.properties.items }} "
        "items ({{ trigger.properties.cart_value }} USD) are waiting.\n"
        "{% if customer.traits.tier == 'vip' %}Free shipping for you.{% endif %}\n"
        "See you soon {{ customer.traits.first_name | upcase }}.",
    }
    assert errors == []
