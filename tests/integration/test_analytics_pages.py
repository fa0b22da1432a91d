"""The analytics pages: overview, one journey's figures, filters and CSV downloads."""

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.journeys import lifecycle
from engine.models import Role, Run, RunStatus
from tests.factories import login, make_user
from tests.world import CART, sample


def _play(world):
    """Two carts on the web: one buyer (by email), one still waiting."""
    journey = world.publish(sample())
    world.post({**CART, "customer": {"id": "buyer", "email": "b@example.com"}})
    world.post({**CART, "customer": {"id": "waiter", "email": "w@example.com"}})
    world.post(
        {"type": "order_completed", "customer": {"email": "b@example.com"}},
        slug="email",
    )
    return journey


def _viewer(world):
    login(world.client, make_user(world.session, Role.viewer))


def _csv(response):
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_overview_shows_each_journey_and_the_cross_channel_figures(world):
    journey = _play(world)
    _viewer(world)
    page = world.client.get("/analytics/?period=24h").get_data(as_text=True)
    assert "Cross-channel completion" in page and "Context retention" in page
    # 1 of 2 runs touched the web and email and converted.
    assert "50.0%" in page
    assert f"/journeys/{journey.id}/analytics" in page


def test_a_journey_page_shows_headline_funnel_and_channels(world):
    journey = _play(world)
    _viewer(world)
    response = world.client.get(f"/journeys/{journey.id}/analytics?period=24h")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for text in (
        "Entered",
        "Funnel by step",
        "Time to goal",
        "Deliveries by channel",
        'id="analytics-data"',
    ):
        assert text in page
    assert '<p class="figure">2</p>' in page  # entered
    funnel = page.split('id="funnel-h"')[1].split("</table>")[0]
    assert "Wait for order_completed, up to" in funnel  # each step says what it does
    # How runs left a step, in the words its edges carry on the canvas.
    assert '<span class="chip">got order_completed 1</span>' in funnel
    assert '<span class="chip">completed here 1</span>' in funnel
    assert ">out " not in funnel and ">event " not in funnel
    assert "50.0% reached the goal" in page


def test_each_table_downloads_as_csv(world):
    journey = _play(world)
    _viewer(world)
    base = f"/journeys/{journey.id}/analytics.csv?period=24h"
    summary = dict(
        (row[0], row[1]) for row in _csv(world.client.get(f"{base}&table=summary"))[1:]
    )
    assert summary["entered"] == "2" and summary["converted"] == "1"
    assert summary["converted_cross_channel"] == "1"
    assert summary["active"] == "1"
    funnel = _csv(world.client.get(f"{base}&table=funnel"))
    header, rows = funnel[0], {row[0]: row for row in funnel[1:]}
    assert header[:4] == ["node", "type", "arrived", "here_now"]
    assert rows["wait"][2:4] == ["2", "1"]
    trend = _csv(world.client.get(f"{base}&table=trend"))
    assert sum(int(row[1]) for row in trend[1:]) == 2
    goal = _csv(world.client.get(f"{base}&table=time_to_goal"))
    assert goal[1][0] == "under 1 minute" and goal[1][2] == "1"
    for table in ("uplift", "channels", "reasons"):
        assert _csv(world.client.get(f"{base}&table={table}"))[0]
    bad = world.client.get(f"{base}&table=secrets")
    assert bad.status_code == 400 and "table must be one of" in bad.get_data(True)


def test_filters_by_version_and_dates(world):
    journey = _play(world)
    # A second version: no one entered it yet.
    document = sample()
    document["name"] = "Cart recovery v2"
    ctx = lifecycle.check_context(world.session, world.settings.webhook_allowed_hosts)
    lifecycle.replace_draft(world.session, journey, document, ctx, None)
    lifecycle.publish(world.session, journey, ctx, None)
    world.session.commit()
    _viewer(world)
    base = f"/journeys/{journey.id}/analytics.csv?table=summary&period=all"
    v1 = dict(row[:2] for row in _csv(world.client.get(f"{base}&version=1"))[1:])
    v2 = dict(row[:2] for row in _csv(world.client.get(f"{base}&version=2"))[1:])
    assert v1["entered"] == "2" and v2["entered"] == "0"
    old = "period=custom&since=2020-01-01&until=2020-01-31"
    before = dict(
        row[:2]
        for row in _csv(
            world.client.get(
                f"/journeys/{journey.id}/analytics.csv?table=summary&{old}"
            )
        )[1:]
    )
    assert before["entered"] == "0"
    page = world.client.get(
        f"/journeys/{journey.id}/analytics?period=custom&since=2026-02-01&until=2026-01-01"
    ).get_data(as_text=True)
    assert "the end date is before the start date" in page


def test_archiving_counts_the_runs_it_ends(world):
    journey = _play(world)
    lifecycle.pause(world.session, journey, None)
    lifecycle.archive(world.session, journey, None, world_now())
    world.session.commit()
    assert (
        world.session.scalars(select(Run).where(Run.status == RunStatus.waiting)).all()
        == []
    )
    _viewer(world)
    summary = dict(
        row[:2]
        for row in _csv(
            world.client.get(
                f"/journeys/{journey.id}/analytics.csv?table=summary&period=all"
            )
        )[1:]
    )
    assert summary["active"] == "0" and summary["exited"] == "1"


def world_now():
    from engine.models import utcnow

    return utcnow() + timedelta(seconds=1)


def test_unknown_journeys_are_404_pages(client, session):
    login(client, make_user(session, Role.viewer))
    response = client.get("/journeys/999/analytics")
    assert response.status_code == 404
    assert "Traceback" not in response.get_data(as_text=True)


BAD_QUERIES = [
    "table=funnel",
    "journey_id=7",
    "_external=1",
    "period=custom",
    "period=custom&since=2026-01-01",
    "period=custom&until=2026-01-01",
    "period=custom&since=2026-01-01&until=9999-12-31",
    "period=custom&since=0001-01-01&until=0001-01-01",
    "period=custom&since=bad&until=bad",
    "period=custom&since=2026-01-01&until=2025-01-01",
    "period=bogus&version=zzz&granularity=bogus",
    "granularity=hour&period=90d",
    "page=%C2%B2",
    "page=99999999999999999999",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_no_query_string_breaks_an_analytics_page(world, query):
    journey = _play(world)
    _viewer(world)
    for url in (
        f"/analytics/?{query}",
        f"/journeys/{journey.id}/analytics?{query}",
        f"/journeys/{journey.id}/analytics.csv?{query}&table=trend",
    ):
        response = world.client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        assert "http://localhost" not in response.get_data(as_text=True)


def test_a_custom_range_without_both_dates_says_so(world):
    journey = _play(world)
    _viewer(world)
    page = world.client.get(
        f"/journeys/{journey.id}/analytics?period=custom&since=2026-01-01"
    ).get_data(as_text=True)
    assert "give both dates, or choose a period above" in page


def test_a_draft_with_dangling_edges_still_has_an_analytics_page(client, session):
    from engine.models import Journey, JourneyStatus

    login(client, make_user(session, Role.viewer))
    broken = Journey(
        name="Half drawn",
        status=JourneyStatus.draft,
        draft={
            "schema": "throughline.journey/v1",
            "name": "Half drawn",
            "nodes": [{"id": "a", "type": "wait", "config": {}}],
            "edges": [{"from": "a", "to": "gone"}],
        },
    )
    session.add(broken)
    session.commit()
    assert client.get(f"/journeys/{broken.id}/analytics").status_code == 200


def test_here_now_counts_runs_that_arrived_before_the_period(world):
    journey = _play(world)  # one run waits at "wait"
    from engine.models import Counter

    for row in world.session.scalars(select(Counter)):
        row.bucket -= timedelta(days=3)  # everything happened three days ago
    world.session.commit()
    _viewer(world)
    funnel = _csv(
        world.client.get(
            f"/journeys/{journey.id}/analytics.csv?table=funnel&period=24h"
        )
    )
    rows = {row[0]: row for row in funnel[1:]}
    assert rows["wait"][2:4] == [
        "0",
        "1",
    ]  # none arrived in the last day; one waits now


def test_the_journeys_list_links_a_published_journey_to_its_analytics(world):
    journey = _play(world)
    _viewer(world)
    page = world.client.get("/journeys/").get_data(as_text=True)
    assert f'href="/journeys/{journey.id}/analytics"' in page


def test_a_published_journeys_canvas_page_links_to_its_analytics(world):
    journey = _play(world)
    _viewer(world)
    page = world.client.get(f"/journeys/{journey.id}").get_data(as_text=True)
    assert f'href="/journeys/{journey.id}/analytics"' in page


@pytest.mark.security
def test_a_channel_that_journeys_sent_through_shows_its_page_and_deliveries(world):
    """Regression: the channel page named the journeys of its deliveries with dict() over a
    result, which answered 500 for every channel a journey had sent through."""
    from datetime import timedelta

    journey = _play(world)
    # The waiting VIP cart times out: a call by the support desk.
    world.later(timedelta(hours=2))
    _viewer(world)
    page = world.client.get("/channels/support-desk")
    assert page.status_code == 200
    deliveries = world.client.get("/channels/support-desk/deliveries")
    assert deliveries.status_code == 200
    listing = deliveries.get_data(as_text=True)
    assert journey.name in listing
    # Each delivery names its step by what it does and the customer it was for.
    assert f"{journey.name}</a>: Send via support-desk: Call [first_name]" in listing
    assert 'href="/customers/' in listing and "Ada" in listing


def test_the_overview_ranks_filters_and_flags_journeys_whose_sends_went_nowhere(world):
    from engine.journeys import lifecycle

    cart = world.publish(sample())
    nowhere = sample()
    nowhere["name"] = "Web nudge"
    nowhere["nodes"] = [
        nowhere["nodes"][0],
        {
            "id": "nudge",
            "type": "send",
            "config": {"channel": "web", "message": {"text": "Back?"}},
        },
        {"id": "end", "type": "exit", "config": {}},
    ]
    nowhere["edges"] = [
        {"from": "start", "to": "nudge"},
        {"from": "nudge", "to": "end"},
    ]
    nowhere["layout"] = {}
    web_nudge = world.publish(nowhere)  # the web channel has no action URL
    lifecycle.create_journey(
        world.session,
        {**sample(), "name": "Still a draft"},
        lifecycle.check_context(world.session),
        None,
    )
    world.session.commit()
    world.post({**CART, "customer": {"id": "a"}})
    world.post({**CART, "customer": {"id": "b"}})
    _viewer(world)

    def names(query=""):
        page = world.client.get(f"/analytics/?{query}").get_data(as_text=True)
        return re.findall(
            r'/journeys/\d+/analytics\?period=7d">([^<]+)</a>', page
        ), page

    shown, page = names()
    assert shown == ["Cart recovery", "Web nudge"]  # live ones, by name
    assert (
        "Its sends delivered nothing in this period (2 suppressed or failed)." in page
    )
    assert (
        page.count("delivered nothing") == 1
    )  # Cart recovery's calls reached the desk
    assert 'aria-sort="ascending"' in page
    shown, _ = names("status=draft")
    assert shown == ["Still a draft"]
    shown, _ = names("status=all&sort=name&order=desc")
    assert shown == ["Web nudge", "Still a draft", "Cart recovery"]
    shown, _ = names("status=all&sort=entered&order=asc")
    assert shown == ["Still a draft", "Cart recovery", "Web nudge"]  # 0, 2, 2 entered
    shown, page = names("sort=entered&order=desc&status=bogus&page=x")
    assert shown == ["Cart recovery", "Web nudge"] and 'aria-sort="descending"' in page
    assert cart.id != web_nudge.id
