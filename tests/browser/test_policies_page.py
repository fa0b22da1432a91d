from playwright.sync_api import Page, expect

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import Role
from engine.policies import document_of, store
from tests.browser.test_pages import _sign_in
from tests.factories import make_user
from tests.world import CART, World, sample


def test_a_marketer_sets_the_policies_with_the_keyboard(
    page: Page, live_server, session, settings, screenshot_dir
):
    load_demo(session, SecretBox(settings.encryption_key))
    make_user(session, Role.marketer, email="marketer@example.com")
    session.commit()
    _sign_in(page, live_server, "marketer@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Policies", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Policies", exact=True)).to_be_visible()
    caps = page.locator("table.caps tbody tr")
    expect(caps).to_have_count(1)
    caps.first.get_by_label("Email").check()
    caps.first.get_by_label("SMS").check()
    at_most = page.get_by_label("At most, cap 1")
    at_most.fill("1")
    at_most.press("Tab")
    page.keyboard.press("ArrowDown")  # the window: from "week"
    page.get_by_label("Hold sends during quiet hours").check()
    page.get_by_role("group", name="Quiet hours channels").get_by_label("SMS").check()
    page.get_by_label("Share of customers held out, in percent").fill("5")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Save policies").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(caps).to_have_count(2)
    page.screenshot(path=str(screenshot_dir / "policies.png"), full_page=True)
    session.rollback()
    saved = document_of(store.read(session)[0])
    assert saved["frequency_caps"] == [
        {"channels": ["email", "sms"], "max": 1, "per": "P30D"}
    ]
    assert saved["quiet_hours"]["channels"] == ["sms"]
    assert saved["global_holdout"] == {"percent": 5}

    # A mistake is named at its field, and the page keeps what was typed.
    page.get_by_label("Share of customers held out, in percent").fill("80")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Save policies").click()
    expect(page.get_by_role("alert")).to_contain_text("Not saved: 1 problem")
    expect(page.get_by_text("give a share from 0 to 50 percent")).to_be_visible()
    expect(page.get_by_label("Share of customers held out, in percent")).to_have_value(
        "80"
    )
    page.screenshot(path=str(screenshot_dir / "policies-error.png"))


def test_a_manager_reads_what_the_journeys_add_over_the_holdout(
    page: Page,
    live_server,
    client,
    session,
    settings,
    redis_client,
    recorders,
    engine_runtime,
    screenshot_dir,
):
    world = World(client, session, settings, redis_client, recorders)
    store.save(session, {"global_holdout": {"percent": 30}}, None)
    session.commit()
    journey = world.publish(sample())
    for number in range(40):
        world.post(
            {
                **CART,
                "customer": {"id": f"c-{number}", "email": f"c{number}@example.com"},
            }
        )
    for number in range(0, 40, 3):
        world.post(
            {"type": "order_completed", "customer": {"id": f"c-{number}"}},
        )
    make_user(session, Role.viewer, email="manager@example.com")
    _sign_in(page, live_server, "manager@example.com")
    page.goto(f"{live_server}/journeys/{journey.id}/analytics")
    section = page.locator("section.global-holdout")
    expect(
        section.get_by_role("heading", name="Against the global holdout")
    ).to_be_visible()
    expect(section).to_contain_text("The global holdout (sent nothing)")
    expect(section).to_contain_text("95% confidence interval")
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "global-holdout.png"))
    page.goto(f"{live_server}/analytics/")
    expect(page.locator("section.global-holdout")).to_contain_text("Everyone else")
