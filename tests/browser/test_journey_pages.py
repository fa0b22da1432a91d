from playwright.sync_api import Page, expect

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import Role
from tests.browser.test_pages import _sign_in
from tests.factories import make_user


def test_a_marketer_creates_from_a_starter_then_archives_with_the_keyboard(
    page: Page, live_server, session, settings, screenshot_dir
):
    load_demo(session, SecretBox(settings.encryption_key))
    make_user(session, Role.marketer, email="marketer@example.com")
    _sign_in(page, live_server, "marketer@example.com")
    expect(
        page.get_by_role("heading", name="Start from a proven journey")
    ).to_be_visible()

    page.get_by_role("button", name="New journey").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="New journey")).to_be_visible()
    expect(page.get_by_label("Name")).to_be_focused()  # autofocus, before any typing
    page.keyboard.type("Ticket routing for spring")
    expect(page.get_by_label("Name")).to_have_value("Ticket routing for spring")
    page.keyboard.press("Tab")  # onto the first starter choice: Blank
    for _ in range(2):
        page.keyboard.press("ArrowDown")  # Cart recovery, then VIP routing
    expect(page.get_by_label("VIP routing")).to_be_checked()
    page.wait_for_timeout(300)  # let the radio's transition finish before the picture
    page.screenshot(path=str(screenshot_dir / "journey-new.png"))
    page.keyboard.press("Enter")

    expect(
        page.get_by_role("heading", name="Ticket routing for spring")
    ).to_be_visible()
    expect(page.get_by_text("Created “Ticket routing for spring”")).to_be_visible()
    expect(page.locator('#canvas [data-node-id="premium"]')).to_be_visible()
    page.get_by_text("The draft's steps as a list").click()
    steps = page.get_by_role("table")
    expect(steps.get_by_text("premium", exact=True)).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "journey.png"))

    page.get_by_role("button", name="More").focus()
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Archive…").focus()
    page.keyboard.press("Enter")
    expect(
        page.get_by_role("heading", name="Archive “Ticket routing for spring”?")
    ).to_be_visible()
    page.get_by_role("button", name="Archive the journey").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Archived “Ticket routing for spring”.")).to_be_visible()
    expect(page.get_by_role("link", name="Ticket routing for spring")).to_have_count(0)
