"""The API reference page draws the OpenAPI description under the page's CSP."""

from playwright.sync_api import Page, expect

from engine.models import Role
from tests.browser.test_pages import _sign_in
from tests.factories import make_user


def test_a_viewer_reads_the_api_reference_from_the_channels_page(
    page: Page, live_server, session, screenshot_dir
):
    make_user(session, Role.viewer, email="viewer@example.com")
    _sign_in(page, live_server, "viewer@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Channels"
    ).click()
    page.get_by_role("link", name="API reference").click()
    expect(
        page.get_by_role("heading", name="API reference", exact=True)
    ).to_be_visible()
    reference = page.locator("#api-reference")
    expect(
        reference.get_by_text("/api/v1/journeys/{journey_id}/publish-plan")
    ).to_be_visible(timeout=10_000)
    expect(reference.get_by_text("/hooks/{slug}", exact=True)).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "api-reference.png"))
