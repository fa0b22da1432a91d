"""Publishing a live journey with a plan for the customers already inside, in the browser."""

from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine.journeys import lifecycle
from engine.models import Role, Run, RunStatus
from tests.browser.test_pages import _sign_in
from tests.conftest import work_all
from tests.factories import make_user
from tests.integration.test_moves import _document, _sign_up
from tests.world import World


def test_a_marketer_moves_the_customers_waiting_in_a_live_journey(
    page: Page,
    live_server,
    client,
    session,
    settings,
    redis_client,
    engine_runtime,
    screenshot_dir,
):
    world = World(client, session, settings, redis_client, {})
    journey = world.publish(_document("P1D"))
    _sign_up(world, 12)
    ctx = lifecycle.check_context(session, settings.webhook_allowed_hosts)
    changed = _document("PT2H", "New words")
    changed["nodes"][1]["label"] = "Give them a moment"
    lifecycle.replace_draft(session, journey, changed, ctx, None)
    session.commit()
    make_user(session, Role.marketer, email="marketer@example.com")
    _sign_in(page, live_server, "marketer@example.com")

    page.goto(f"{live_server}/journeys/{journey.id}/publish")
    expect(
        page.get_by_role("heading", name="Customers already in the journey")
    ).to_be_visible()
    drawing = page.get_by_role("img", name="The new version: 4 steps, 2 changed")
    expect(drawing).to_be_visible()
    expect(drawing.locator(".sketch-card.changed")).to_have_count(2)
    choice = page.get_by_label("Where the customers waiting at Wait go")
    expect(choice).to_have_value("hold")
    sentence = page.locator(".plan-sentence")
    expect(sentence).to_have_text(
        "12 customers waiting at 'Wait' (version 1) will wait 2 hours, counted from "
        "now, at 'Give them a moment' in version 2."
    )
    choice.focus()
    choice.select_option("stay")
    expect(sentence).to_have_text(
        "12 customers waiting at 'Wait' (version 1) stay on version 1 until they "
        "leave it."
    )
    choice.select_option("exit")
    expect(sentence).to_have_text(
        "12 customers waiting at 'Wait' (version 1) leave the journey now."
    )
    choice.select_option("hold")
    page.screenshot(path=str(screenshot_dir / "publish-plan.png"), full_page=True)

    page.get_by_role("button", name="Publish version 2").click()
    expect(
        page.get_by_text("Moving 12 customers already in it as planned.")
    ).to_be_visible()
    expect(page.locator("#move-progress")).to_contain_text("0 of 12")
    work_all(redis_client)
    # the progress line polls and says when the move is done
    expect(page.locator("#move-progress")).to_have_text(
        "Moved 12 customers to the new version.", timeout=10_000
    )
    session.rollback()
    session.expire_all()
    runs = session.scalars(select(Run)).all()
    assert {(r.status, r.current_node) for r in runs} == {(RunStatus.waiting, "hold")}
