from playwright.sync_api import Page, expect

from engine.models import Role
from tests.factories import PASSWORD, make_user


def test_sign_in_with_the_keyboard_and_see_the_journeys_page(
    page: Page, live_server, session, screenshot_dir
):
    user = make_user(session, Role.admin, email="admin@example.com")
    page.goto(f"{live_server}/journeys/")
    expect(page).to_have_url(f"{live_server}/login?next=/journeys/")
    page.screenshot(path=str(screenshot_dir / "login.png"))

    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(user.email)
    page.keyboard.press("Tab")
    page.keyboard.type("a wrong password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("do not match an active account")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(f"{live_server}/journeys/")
    expect(page.get_by_role("heading", name="Journeys", exact=True)).to_be_visible()
    expect(page.get_by_text("No journeys yet")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Journeys", "Channels", "Customers", "Analytics", "Admin"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "journeys-empty.png"))

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server}/login")
    expect(page.get_by_text("You are signed out.")).to_be_visible()
