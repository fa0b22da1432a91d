"""A manager reads a journey's figures in the browser, filters them and downloads a CSV."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine.models import Role, Run, RunStatus
from tests.browser.test_pages import _sign_in
from tests.factories import make_user
from tests.world import CART, World, sample


@pytest.fixture
def played(client, session, settings, redis_client, recorders, engine_runtime):
    """Twelve abandoned carts: some buy by email, VIPs get a call, the rest an email."""
    world = World(client, session, settings, redis_client, recorders)
    journey = world.publish(sample())
    for number in range(12):
        tier = "vip" if number % 4 == 0 else "regular"
        world.post(
            {
                **CART,
                "customer": {"id": f"c-{number}", "email": f"c{number}@example.com"},
                "traits": {"first_name": f"C{number}", "tier": tier},
            }
        )
    for number in (1, 2, 5, 7, 9):
        world.post(
            {
                "type": "order_completed",
                "customer": {"email": f"c{number}@example.com"},
            },
            slug="email",
        )
    world.post({"type": "unsubscribed", "customer": {"id": "c-3"}})
    for run in world.session.scalars(
        select(Run).where(Run.status == RunStatus.waiting)
    ):
        if run.id % 3:
            run.wake_at -= timedelta(hours=2)
    world.session.commit()
    world.later(timedelta(0))
    return journey


def test_a_manager_reads_filters_and_downloads_a_journeys_figures(
    page: Page, live_server, session, played, screenshot_dir
):
    make_user(session, Role.viewer, email="manager@example.com")
    _sign_in(page, live_server, "manager@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Analytics", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Cross-channel completion")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "analytics-overview.png"))
    page.get_by_role("link", name="Cart recovery").click()
    expect(page.get_by_role("heading", name="Funnel by step")).to_be_visible()
    expect(page.locator("#trend-chart")).to_be_visible()
    # Chart.js drew on the canvases (a blank canvas has no pixels set).
    page.wait_for_function("() => typeof Chart !== 'undefined'")
    drawn = page.evaluate(
        "() => Object.values(Chart.instances).map(chart => chart.canvas.id).sort()"
    )
    assert drawn == ["funnel-chart", "goal-chart", "trend-chart"]
    expect(page.get_by_text("reached the goal")).to_contain_text("41.7%")
    page.screenshot(path=str(screenshot_dir / "journey-analytics.png"), full_page=True)
    # Keyboard: choose a period and apply it.
    page.get_by_label("Period").focus()
    page.get_by_label("Period").select_option("24h")
    page.get_by_role("button", name="Apply").press("Enter")
    expect(page).to_have_url(re.compile(r"period=24h"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV of the headline figures").click()
    text = download.value.path().read_text(encoding="utf-8")
    assert text.startswith("figure,value,since,until")
    assert "entered,12," in text
