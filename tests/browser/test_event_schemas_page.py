from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine.models import Role, SchemaViolation
from engine.schemas import store as schema_store
from tests.browser.test_pages import _sign_in
from tests.channels import post_event
from tests.factories import make_user
from tests.world import World


def test_a_marketer_turns_a_draft_into_an_enforced_schema_and_replays(
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
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    world = World(client, session, settings, redis_client, recorders)
    for number, value in enumerate([20, 35.5, 80]):
        world.post(
            {
                "type": "cart_abandoned",
                "customer": {"id": f"c-{number}"},
                "properties": {"cart_value": value, "currency": "EUR"},
            }
        )
    make_user(session, Role.marketer, email="marketer@example.com")
    session.commit()
    _sign_in(page, live_server, "marketer@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Events", exact=True
    ).click()
    page.get_by_role("link", name="cart_abandoned").click()
    expect(
        page.get_by_text("Inferred from the latest 3 cart_abandoned events")
    ).to_be_visible()
    page.get_by_role("button", name="Start from this draft").click()
    expect(page.get_by_label("JSON Schema of the event's properties")).to_contain_text(
        '"cart_value"'
    )
    page.get_by_label("Enforce: refuse an event that breaks it").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Save as version 1").click()
    expect(page.get_by_text("Saved as version 1")).to_be_visible()
    session.rollback()
    assert schema_store.row_of(session, "cart_abandoned").mode == "enforce"

    # A channel renames the property: the event is refused, kept, and listed.
    schema_store.forget()
    answer = post_event(
        client,
        "web",
        world.secrets["web"],
        {
            "type": "cart_abandoned",
            "customer": {"id": "c-9"},
            "properties": {"cartValue": 12, "currency": "EUR"},
        },
    )
    assert answer.status_code == 400
    page.reload()
    quarantine = page.locator("#quarantine")
    expect(quarantine).to_contain_text("'cart_value' is a required property")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=str(screenshot_dir / "event-schema.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    quarantine.get_by_role("button", name="Replay the refused events").click()
    expect(page.get_by_text("0 event(s) taken; 1 still do not fit")).to_be_visible()
    session.rollback()
    assert session.scalars(select(SchemaViolation.outcome)).all() == ["refused"]
    assert errors == []
