import pytest
from playwright.sync_api import Page, expect

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import Role
from tests.factories import PASSWORD, make_user


def _sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Journeys", exact=True)).to_be_visible()
    # htmx is deferred and binds its triggers once the document has loaded;
    # keys pressed before that would reach a plain input.
    page.wait_for_load_state()


@pytest.mark.parametrize(
    ("link", "heading", "text", "shot"),
    [
        ("Journeys", "Journeys", "Cart recovery", "journeys.png"),
        ("Channels", "Channels", "support-desk", "channels.png"),
        ("Customers", "Customers", "ada@example.com", "customers.png"),
        ("Analytics", "Analytics", "Cart recovery", "analytics.png"),
        ("Admin", "Users", "admin@example.com", "admin-users.png"),
    ],
)
def test_every_page_of_the_navigation_shows_the_demo_data(
    page: Page,
    live_server,
    session,
    settings,
    screenshot_dir,
    link,
    heading,
    text,
    shot,
):
    load_demo(session, SecretBox(settings.encryption_key))
    make_user(session, Role.admin, email="admin@example.com")
    _sign_in(page, live_server, "admin@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=link, exact=True
    ).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_text(text).first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / shot))


def test_journey_search_updates_the_list_as_one_types(
    page: Page, live_server, session, settings
):
    load_demo(session, SecretBox(settings.encryption_key))
    make_user(session, Role.viewer, email="viewer@example.com")
    _sign_in(page, live_server, "viewer@example.com")
    page.get_by_label("Search journeys by name").press_sequentially("onboard")
    expect(page.get_by_text("Cart recovery")).to_have_count(0)
    expect(page.get_by_text("Onboarding across email and app")).to_be_visible()
    expect(page).to_have_url(f"{live_server}/journeys/?q=onboard&status=")
