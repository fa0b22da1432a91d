import json
import re

import httpx
from playwright.sync_api import Page, expect

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import Role
from tests.browser.test_pages import _sign_in
from tests.channels import Recorder, signed_headers
from tests.conftest import work_all
from tests.factories import make_user

FIRST_EVENT = {
    "type": "order_completed",
    "customer": {"id": "c-9001", "email": "lin@example.com"},
    "properties": {"order_value": 42},
}


def test_an_admin_connects_a_channel_with_the_keyboard_and_sees_its_first_event(
    page: Page,
    live_server,
    session,
    settings,
    redis_client,
    engine_runtime,
    screenshot_dir,
):
    load_demo(session, SecretBox(settings.encryption_key))
    make_user(session, Role.admin, email="admin@example.com")
    page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=live_server
    )
    _sign_in(page, live_server, "admin@example.com")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Channels", exact=True
    ).click()

    with Recorder() as shop:
        page.get_by_role("button", name="Connect a channel").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Connect a channel")).to_be_visible()
        expect(page.get_by_label("Slug")).to_be_focused()
        page.keyboard.type("Shop Floor")  # not a slug: the field says why
        page.keyboard.press("Tab")
        page.keyboard.type("Point of sale")
        page.keyboard.press("Tab")
        page.keyboard.type("Poi")  # a closed select picks the option typed
        expect(page.get_by_label("Kind")).to_have_value("store")
        page.keyboard.press("Tab")
        page.keyboard.type(shop.url)
        page.keyboard.press("Enter")
        expect(page.locator("#slug-error")).to_contain_text("lower-case letters")
        expect(page.get_by_label("Slug")).to_have_attribute("aria-invalid", "true")

        page.get_by_label("Slug").fill("")
        page.get_by_label("Slug").focus()
        page.keyboard.type("shop-floor")
        page.keyboard.press("Enter")
        expect(
            page.get_by_role("heading", name="“Point of sale” is connected")
        ).to_be_visible()
        page.wait_for_load_state()  # the copy buttons' script has run
        inbound = page.get_by_label("Inbound secret").input_value()
        outbound = page.get_by_label("Outbound secret").input_value()
        assert inbound.startswith("whsec_") and outbound.startswith("whsec_")
        example = page.locator("#example-curl")
        expect(example).to_contain_text(f"{live_server}/hooks/shop-floor")
        expect(example).to_contain_text("webhook-signature: v1,")
        expect(page.get_by_text("No events yet.")).to_be_visible()

        copy = page.locator('button[data-copy="inbound-secret"]')
        copy.focus()
        page.keyboard.press("Enter")
        expect(copy).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == inbound
        page.wait_for_timeout(300)
        page.screenshot(path=str(screenshot_dir / "channel-created.png"))

        page.get_by_role("button", name="I have copied the secrets").click()
        expect(page.get_by_role("heading", name="Point of sale")).to_be_visible()
        assert inbound not in page.content() and outbound not in page.content()

        body = json.dumps(FIRST_EVENT)
        answer = httpx.post(
            f"{live_server}/hooks/shop-floor",
            content=body,
            headers=signed_headers(inbound, body),
        )
        assert answer.status_code == 202, answer.text
        # No reload: the list of events refreshes itself.
        events = page.locator("#events")
        expect(events.get_by_text("order_completed")).to_be_visible(timeout=12_000)
        expect(events.get_by_text("c-9001")).to_be_visible()

        page.get_by_role("button", name="Send a test action").click()
        expect(page.get_by_text("Sending the test action")).to_be_visible()
        work_all(redis_client)
        expect(
            page.get_by_text(re.compile(r"Delivered: the channel answered HTTP 200"))
        ).to_be_visible(timeout=10_000)
        expect(page.locator("#deliveries").get_by_text("Test action")).to_be_visible()
        assert len(shop.delivered()) == 1 and shop.bad_signatures == 0
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(screenshot_dir / "channel.png"))


def test_disabling_asks_first_with_the_keyboard(
    page: Page, live_server, session, settings
):
    load_demo(session, SecretBox(settings.encryption_key))
    make_user(session, Role.admin, email="admin@example.com")
    _sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server}/channels/sms")
    page.get_by_role("button", name="Disable…").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Disable “SMS provider”?")).to_be_visible()
    page.get_by_role("button", name="Disable the channel").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Disabled “SMS provider”")).to_be_visible()
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
