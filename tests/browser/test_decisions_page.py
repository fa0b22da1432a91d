from playwright.sync_api import Page, expect

from engine.decisions import store
from engine.models import Role
from tests.browser.test_pages import _sign_in
from tests.factories import make_user


def test_a_marketer_builds_tries_and_publishes_a_decision_table(
    page: Page, live_server, session, screenshot_dir
):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    make_user(session, Role.marketer, email="marketer@example.com")
    session.commit()
    _sign_in(page, live_server, "marketer@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Decisions", exact=True
    ).click()
    page.get_by_label("Name").fill("Support tier")
    page.get_by_label("Key").fill("support_tier")
    page.get_by_label("Key").press("Enter")
    expect(page.get_by_role("heading", name="Support tier", exact=True)).to_be_visible()
    page.wait_for_load_state()  # htmx has bound the editor's buttons

    # A rule, built with the rule builder: VIP customers get premium support.
    page.get_by_role("button", name="+ Add a rule").click()
    rule = page.get_by_role("region", name="Rule 1")
    # The new rule's outcome takes the focus once the editor is drawn again.
    expect(rule.get_by_label("Then the outcome is")).to_be_focused()
    rule.get_by_label("Field").fill("customer.traits.tier")
    rule.get_by_label("Value", exact=True).fill("vip")
    rule.get_by_label("Then the outcome is").fill("premium")
    rule.get_by_label("With the values").fill("queue: vip\nsla_hours: 1")
    page.get_by_role("button", name="+ Add a rule").click()
    second = page.get_by_role("region", name="Rule 2")
    expect(second.get_by_label("Then the outcome is")).to_be_focused()
    second.get_by_label("Field").fill("context.cart_value")
    # A comparison chosen redraws the condition, for a number now.
    with page.expect_response(lambda answer: "/decisions/support_tier" in answer.url):
        second.get_by_label("Comparison").select_option("gte")
    expect(second.get_by_label("Type")).to_have_value("number")
    second.get_by_label("Value", exact=True).fill("500")
    second.get_by_label("Then the outcome is").fill("premium")
    page.get_by_label("Outcome", exact=True).fill("self_service")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    session.rollback()
    draft = store.get(session, "support_tier").draft
    assert draft["rules"][0] == {
        "when": {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
        "outcome": "premium",
        "values": {"queue": "vip", "sla_hours": 1},
    }
    assert draft["rules"][1]["when"] == {
        "field": "context.cart_value",
        "op": "gte",
        "value": 500,
    }

    # Try it on a customer typed in: which rule held, and why.
    page.get_by_label("Traits (JSON)").fill('{"tier": "vip"}')
    page.get_by_role("button", name="Try the rules").click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("premium (rule 1)")
    expect(result).to_contain_text("Rule 2 (premium): does not hold")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Publish the saved draft").click()
    expect(page.get_by_text("Version 1 of “Support tier” is live")).to_be_visible()
    page.wait_for_load_state()  # htmx has bound the test form
    page.get_by_label("Traits (JSON)").fill('{"tier": "vip"}')
    page.get_by_role("button", name="Try the rules").click()
    expect(result).to_contain_text("premium (rule 1)")
    expect(result).to_contain_text("For a customer with the traits typed")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshot_dir / "decision-table.png"))
    session.rollback()
    assert store.get(session, "support_tier").live_version == 1
    assert errors == []
