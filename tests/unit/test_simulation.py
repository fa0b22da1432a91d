import json
from datetime import UTC, datetime

import pytest

from engine.execution.simulate import SimulationError, simulate
from engine.journeys.starters import FOLDER as STARTERS
from engine.language import graph

DATA = STARTERS
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def journey(name="cart_recovery", change=None):
    raw = json.loads((DATA / f"{name}.json").read_text())
    if change:
        change(raw)
    return graph.parse(raw)


def path(result):
    return [(s["node"], s["outcome"]) for s in result["steps"]]


def test_a_vip_who_does_not_buy_gets_a_call_after_an_hour():
    result = simulate(
        journey(),
        {
            "customer": {"traits": {"first_name": "Ada", "tier": "vip"}},
            "events": [{"type": "cart_abandoned", "properties": {"cart_value": 120}}],
        },
        START,
    )
    assert path(result) == [
        ("start", "out"),
        ("wait", "waiting"),
        ("wait", "timeout"),
        ("vip", "true"),
        ("call", "out"),
        ("end", "completed"),
    ]
    assert result["sends"] == [
        {
            "run": 1,
            "node": "call",
            "channel": "support-desk",
            "message": {"task": "Call Ada"},
            "at": "2026-11-23T11:00:00+00:00",
        }
    ]
    assert result["final"] == "completed"
    assert "cart_value ≥ 50: yes (it is 120)" in result["steps"][0]["detail"]["rule"]
    assert result["steps"][3]["detail"]["reason"] == "tier is vip: yes (it is vip)"


def test_a_standard_customer_gets_mail_with_its_fallback():
    result = simulate(
        journey(),
        {
            "customer": {"traits": {"tier": "standard"}},
            "events": [{"type": "cart_abandoned", "properties": {"cart_value": 60}}],
        },
        START,
    )
    assert ("vip", "false") in path(result)
    assert (
        result["sends"][0]["channel"] == "email"
        and result["sends"][0]["fallback_channel"] == "sms"
    )


def test_buying_within_the_hour_ends_the_journey_and_converts():
    result = simulate(
        journey(),
        {
            "events": [
                {"type": "cart_abandoned", "properties": {"cart_value": 99}},
                {"type": "order_completed", "after": "PT20M"},
            ]
        },
        START,
    )
    assert path(result)[-3:] == [
        ("wait", "converted"),
        ("wait", "event"),
        ("end", "completed"),
    ]
    assert result["sends"] == [] and result["runs"][0]["converted"] is True


def test_a_small_cart_does_not_enter():
    result = simulate(
        journey(),
        {"events": [{"type": "cart_abandoned", "properties": {"cart_value": 10}}]},
        START,
    )
    assert result["final"] == "not_entered" and result["steps"] == []


def test_exit_on_ends_a_waiting_run():
    result = simulate(
        journey(),
        {
            "events": [
                {"type": "cart_abandoned", "properties": {"cart_value": 99}},
                {"type": "unsubscribed", "after": "PT5M"},
            ]
        },
        START,
    )
    assert (
        path(result)[-1] == ("wait", "exited")
        and result["final"] == "exited"
        and result["sends"] == []
    )


def test_reentry_rules_are_applied():
    events = {
        "events": [{"type": "cart_abandoned", "properties": {"cart_value": 99}}] * 2
    }
    again = simulate(journey(), events, START)
    refused = [s for s in again["steps"] if s["outcome"] == "not_entered"]
    assert [s["detail"]["reason"] for s in refused] == ["already in this journey"]

    never = journey(change=lambda d: d["entry"].update(reentry="never"))
    later = {
        "events": [
            {"type": "cart_abandoned", "properties": {"cart_value": 99}},
            {
                "type": "cart_abandoned",
                "properties": {"cart_value": 99},
                "after": "P1D",
            },
        ]
    }
    refused = [
        s
        for s in simulate(never, later, START)["steps"]
        if s["outcome"] == "not_entered"
    ]
    assert refused[0]["detail"]["reason"] == "entered before, and re-entry is never"
    assert (
        len(simulate(journey(), later, START)["runs"]) == 2
    )  # after_exit lets them back in

    capped = journey(
        change=lambda d: d["entry"].update(reentry="always", max_entries=2)
    )
    three = {
        "events": [{"type": "cart_abandoned", "properties": {"cart_value": 99}}] * 3
    }
    result = simulate(capped, three, START)
    assert len(result["runs"]) == 2
    refused = [s for s in result["steps"] if s["outcome"] == "not_entered"]
    assert refused[0]["detail"]["reason"] == "entered 2 times, the most allowed"


def test_profile_updates_are_seen_by_later_nodes():
    result = simulate(
        journey("vip_routing"),
        {
            "customer": {
                "id": "c-7",
                "traits": {
                    "tier": "vip",
                    "first_name": "Ada",
                    "timezone": "Europe/Paris",
                    "tickets": 2,
                },
            },
            "events": [{"type": "ticket_opened", "properties": {"topic": "billing"}}],
        },
        START,
    )
    assert result["customer"]["traits"]["tickets"] == 3
    assert result["customer"]["traits"]["last_topic"] == "billing"
    assert result["sends"][0]["message"] == {"task": "Call Ada about billing"}
    # wait P1D, then the next weekday 09:00 in Paris (08:00 UTC).
    assert path(result)[-4:] == [
        ("pause", "out"),
        ("morning", "waiting"),
        ("morning", "out"),
        ("end", "completed"),
    ]
    morning = [
        s for s in result["steps"] if s["node"] == "morning" and s["outcome"] == "out"
    ][0]
    assert morning["at"] == "2026-11-25T08:00:00+00:00"


def test_split_sides_are_stable_for_a_customer():
    request = {
        "customer": {"id": "c-42", "traits": {"tier": "standard", "plan": "pro"}},
        "events": [{"type": "ticket_opened"}],
    }
    sides = {
        next(
            s["outcome"]
            for s in simulate(journey("vip_routing"), request, START)["steps"]
            if s["node"] == "ab"
        )
        for _ in range(3)
    }
    assert len(sides) == 1


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ([], ""),
        ({"customer": []}, "customer"),
        ({"customer": {"traits": 3}}, "customer.traits"),
        ({"events": {}}, "events"),
        ({"events": [{"properties": {}}]}, "events[0].type"),
        ({"events": [{"type": "x", "after": "later"}]}, "events[0].after"),
        ({"events": [{"type": "x", "properties": [1]}]}, "events[0].properties"),
    ],
)
def test_bad_requests_name_the_field(request_body, field):
    with pytest.raises(SimulationError) as raised:
        simulate(journey(), request_body, START)
    assert raised.value.field == field
