"""The main pages pass axe-core's checks (no serious or critical violation) and log no errors."""

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import Customer, Journey, Role
from tests.browser.test_pages import _sign_in
from tests.conftest import work_all
from tests.factories import make_user

# Loaded from the app's own static files: the Content-Security-Policy runs no inline script.
AXE = "/static/vendor/axe.min.js"

# The violations a reader of the page would hit hardest; "minor" and "moderate" are reported
# by axe too, but not judged here.
SERIOUS = """async () => {
  const found = await axe.run(document, { resultTypes: ["violations"] });
  return found.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
}"""


def serious_violations(page: Page) -> list[str]:
    page.add_script_tag(url=AXE)
    return page.evaluate(SERIOUS)


@pytest.fixture
def demo(session, settings, redis_client, engine_runtime):
    load_demo(session, SecretBox(settings.encryption_key))
    work_all(redis_client)  # no events yet; drains anything the demo queued
    make_user(session, Role.marketer, email="marketer@example.com")
    return session


@pytest.mark.parametrize(
    "where",
    [
        "journeys",
        "designer",
        "journey analytics",
        "customer",
        "policies",
        "decision table",
        "event type",
    ],
)
def test_the_main_pages_have_no_serious_accessibility_problem(
    page: Page, live_server, demo, where
):
    journey = demo.scalars(select(Journey).where(Journey.name == "Cart recovery")).one()
    customer = demo.scalars(select(Customer).order_by(Customer.id)).first()
    _sign_in(page, live_server, "marketer@example.com")
    if where == "designer":
        page.goto(f"{live_server}/journeys/{journey.id}")
        expect(page.locator("#designer[data-ready=true]")).to_be_attached()
        expect(page.locator('#canvas [data-node-id="start"]')).to_contain_text(
            "When cart_abandoned where cart_value ≥ 50"
        )
    elif where == "journey analytics":
        page.goto(f"{live_server}/journeys/{journey.id}/analytics")
        expect(page.get_by_role("heading", name="Funnel by step")).to_be_visible()
    elif where == "customer":
        page.goto(f"{live_server}/customers/{customer.id}")
        expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    elif where == "policies":
        page.goto(f"{live_server}/policies/")
        expect(page.get_by_role("heading", name="Quiet hours")).to_be_visible()
    elif where == "decision table":
        page.goto(f"{live_server}/decisions/support_tier")
        expect(page.get_by_role("region", name="Rule 1")).to_be_visible()
    elif where == "event type":
        page.goto(f"{live_server}/schemas/cart_abandoned")
        expect(
            page.get_by_role("heading", name="Draft from the events seen")
        ).to_be_visible()
    assert serious_violations(page) == []


def test_a_journey_imported_through_the_api_reads_on_the_canvas_as_it_does(
    page: Page, live_server, demo
):
    """The issue's bar: every step shows what its config holds, the canvas has the screen."""
    import httpx

    from engine import accounts
    from engine.journeys import starters
    from engine.models import User

    document = starters.document("vip_routing")
    del document["layout"]  # as another tool would send it: no places, no routes
    document["nodes"][3]["label"] = "Bot or article?"
    user = demo.scalars(select(User).where(User.email == "marketer@example.com")).one()
    token = accounts.create_token(demo, user)
    demo.commit()
    created = httpx.post(
        f"{live_server}/api/v1/journeys",
        json=document,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    journey_id = created.json()["id"]

    _sign_in(page, live_server, "marketer@example.com")
    page.goto(f"{live_server}/journeys/{journey_id}")
    expect(page.locator("#designer[data-ready=true]")).to_be_attached()
    page.get_by_role("button", name="Fit").click()
    answer = page.request.get(f"{live_server}/journeys/{journey_id}/draft.json").json()
    expected = {
        "start": "When ticket_opened",
        "route": "Switch: vip if tier is vip; urgent if priority is high or urgent",
        "ab": "Split 45% bot / 45% article / 10% holdout",
        "bot": "Call chat.example.com/start",
        "count": "Set last_topic, tickets + 1",
        "pause": "Wait 1 day",
        "morning": "Wait until 09:00 their time on Mon–Fri",
    }
    for node in document["nodes"]:
        step = page.locator(f'#canvas [data-node-id="{node["id"]}"]')
        expect(step).to_be_visible()
        expect(step).to_have_attribute("data-node-type", node["type"])
        text = step.text_content() or ""
        # The card holds the whole summary (the screen may clamp it; the text is all there).
        assert answer["summaries"][node["id"]] in text
        if node["id"] in expected:
            assert expected[node["id"]] in text
    expect(page.locator('#canvas [data-node-id="ab"]')).to_contain_text(
        "Bot or article?"
    )
    # Branch edges carry their words.
    edges = page.locator("#canvas .x6-edge-label")
    for words in (
        "vip",
        "urgent",
        "otherwise",
        "bot 45%",
        "holdout 10%",
        "if it fails",
    ):
        expect(edges.filter(has_text=words).first).to_be_attached()
    share = page.evaluate(
        """() => { const r = document.querySelector('[data-canvas]').getBoundingClientRect();
                   return r.width * r.height / (innerWidth * innerHeight); }"""
    )
    assert share >= 0.6
    assert serious_violations(page) == []
