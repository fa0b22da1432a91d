"""Brand-wide policies as a document, and what they decide for one send."""

from datetime import UTC, datetime, timedelta

import pytest

from engine.execution.simulate import simulate
from engine.language import graph
from engine.policies import (
    FREQUENCY_CAP,
    GLOBAL_HOLDOUT,
    QUIET_HOURS,
    THROTTLE,
    Held,
    MinuteSlots,
    PolicyError,
    Remembered,
    Suppressed,
    decide,
    document_of,
    held_out,
    holdout_bucket,
    parse,
)

CHANNELS = frozenset({"email", "sms", "app"})
FULL = {
    "frequency_caps": [{"channels": ["email", "sms"], "max": 3, "per": "P7D"}],
    "quiet_hours": {
        "start": "21:00",
        "end": "08:00",
        "channels": ["sms", "app"],
        "timezone_trait": "timezone",
    },
    "global_holdout": {"percent": 5},
}


def test_a_full_document_reads_back_as_written():
    policies = parse(FULL, CHANNELS)
    assert document_of(policies) == FULL
    assert policies.frequency_caps[0].window == timedelta(days=7)
    assert policies.frequency_caps[0].words() == "3 messages on email or sms per week"
    assert parse({}, CHANNELS).empty


def test_every_problem_is_named_by_its_field():
    with pytest.raises(PolicyError) as caught:
        parse(
            {
                "frequency_caps": [
                    {"channels": ["email", "fax"], "max": 0, "per": "P1Y"},
                    {"channels": [], "max": 2, "per": "soon"},
                ],
                "quiet_hours": {"start": "9pm", "end": "08:00", "channels": ["sms"]},
                "global_holdout": {"percent": 80},
                "colour": "blue",
            },
            CHANNELS,
        )
    fields = [field for field, _ in caught.value.problems]
    assert fields == [
        "colour",
        "frequency_caps[0].channels[1]",
        "frequency_caps[0].max",
        "frequency_caps[0].per",
        "frequency_caps[1].channels",
        "frequency_caps[1].per",
        "quiet_hours.start",
        "global_holdout.percent",
    ]
    assert "no channel 'fax'" in str(caught.value)
    with pytest.raises(PolicyError) as same:
        parse({"quiet_hours": {"start": "08:00", "end": "08:00", "channels": ["sms"]}})
    assert same.value.problems == [
        ("quiet_hours.end", "the end must differ from the start")
    ]
    with pytest.raises(PolicyError):
        parse(["not", "an", "object"])


def test_quiet_hours_hold_a_send_until_they_end_in_the_customers_zone():
    policies = parse(FULL, CHANNELS)
    london = {"timezone": "Europe/London"}
    # 22:30 in London in winter (GMT): held until 08:00 the next morning.
    now = datetime(2026, 1, 15, 22, 30, tzinfo=UTC)
    verdict = decide(policies, "sms", None, london, now, None)
    assert isinstance(verdict, Held) and verdict.reason == QUIET_HOURS
    assert verdict.until == datetime(2026, 1, 16, 8, 0, tzinfo=UTC)
    assert verdict.words == "held for quiet hours until 08:00 Europe/London"
    # Email is not a quiet channel; and outside the hours sms goes.
    assert decide(policies, "email", None, london, now, None) is None
    noon = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert decide(policies, "sms", None, london, noon, None) is None
    # No zone (or an unknown one): UTC.
    unknown = decide(policies, "app", None, {"timezone": "Mars/Base"}, now, None)
    assert isinstance(unknown, Held) and unknown.words.endswith("08:00 UTC")


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # Spring forward (29 March 2026, 01:00 UTC): 22:00 GMT -> 08:00 BST, 07:00 UTC.
        (
            datetime(2026, 3, 28, 22, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        ),
        # Inside the lost hour's night, after the change: 02:30 BST.
        (
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        ),
        # Fall back (25 October 2026, 01:00 UTC): 22:30 BST -> 08:00 GMT, 08:00 UTC.
        (
            datetime(2026, 10, 24, 21, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
        ),
        # The repeated hour, 01:30 GMT the second time.
        (
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
        ),
    ],
)
def test_quiet_hours_end_at_local_eight_across_a_daylight_saving_change(now, until):
    policies = parse(FULL, CHANNELS)
    verdict = decide(policies, "sms", None, {"timezone": "Europe/London"}, now, None)
    assert isinstance(verdict, Held) and verdict.until == until


def test_a_cap_counts_sends_in_its_window_on_its_channels():
    policies = parse(
        {"frequency_caps": [{"channels": ["email", "sms"], "max": 2, "per": "P1D"}]},
        CHANNELS,
    )
    counts = Remembered()
    start = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    verdicts = []
    for hours, channel in [(0, "email"), (1, "app"), (2, "sms"), (3, "email")]:
        counts.now = start + timedelta(hours=hours)
        verdicts.append(decide(policies, channel, None, {}, counts.now, counts))
    assert verdicts[:3] == [None, None, None]
    assert isinstance(verdicts[3], Suppressed) and verdicts[3].reason == FREQUENCY_CAP
    assert verdicts[3].words == (
        "not sent: frequency cap of 2 messages on email or sms per day reached"
    )
    # A day after the first send, one falls out of the window.
    counts.now = start + timedelta(hours=24, minutes=1)
    assert decide(policies, "email", None, {}, counts.now, counts) is None


def test_the_holdout_is_a_stable_share_of_profiles():
    policies = parse({"global_holdout": {"percent": 5}})
    held = [pid for pid in range(1, 20_001) if held_out(policies, pid)]
    assert 800 <= len(held) <= 1_200  # 5% of 20,000, give or take
    # The same profiles every time, in every process: a hash, not a draw.
    assert holdout_bucket(12345) == holdout_bucket(12345)
    assert [pid for pid in range(1, 20_001) if held_out(policies, pid)] == held
    verdict = decide(policies, "email", held[0], {}, datetime.now(UTC), None)
    assert isinstance(verdict, Suppressed) and verdict.reason == GLOBAL_HOLDOUT
    assert not held_out(parse({"global_holdout": {"percent": 0}}), held[0])


def test_a_simulation_shows_a_send_held_for_quiet_hours():
    document = graph.parse(
        {
            "schema": "throughline.journey/v1",
            "name": "Reminder",
            "nodes": [
                {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
                {
                    "id": "text",
                    "type": "send",
                    "config": {"channel": "sms", "message": {"text": "Hi"}},
                },
                {
                    "id": "receipt",
                    "type": "send",
                    "config": {
                        "channel": "sms",
                        "message": {"text": "Receipt"},
                        "transactional": True,
                    },
                },
            ],
            "edges": [
                {"from": "start", "to": "text"},
                {"from": "text", "to": "receipt"},
            ],
        }
    )
    late = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)
    result = simulate(
        document,
        {
            "customer": {"traits": {"timezone": "Europe/London"}},
            "events": [{"type": "signed_up"}],
        },
        late,
        policies=parse(FULL, CHANNELS),
    )
    held = [s for s in result["steps"] if s["node"] == "text"]
    assert held[0]["outcome"] == "waiting"
    assert (
        held[0]["detail"]["reason"] == "held for quiet hours until 08:00 Europe/London"
    )
    assert held[1]["outcome"] == "out"
    assert held[1]["at"] == "2026-01-16T08:00:00+00:00"
    # Both sends made once the hours ended; the transactional one would not have waited.
    assert [s["node"] for s in result["sends"]] == ["text", "receipt"]
    assert result["sends"][0]["at"] == "2026-01-16T08:00:00+00:00"


def test_a_send_limit_gives_each_send_the_next_minute_with_room():
    slots = MinuteSlots(2)
    start = datetime(2026, 5, 1, 9, 0, 30, tzinfo=UTC)
    verdicts = [
        decide(parse({}), "email", None, {}, start, None, slots) for _ in range(5)
    ]
    assert verdicts[:2] == [None, None]
    assert [v.until for v in verdicts[2:]] == [
        datetime(2026, 5, 1, 9, 1, tzinfo=UTC),
        datetime(2026, 5, 1, 9, 1, tzinfo=UTC),
        datetime(2026, 5, 1, 9, 2, tzinfo=UTC),
    ]
    assert verdicts[2].reason == THROTTLE
    assert verdicts[2].words == (
        "held by the journey's send limit (2 a minute) until 09:01 UTC"
    )
    # A run woken in its minute has its slot: it is not given another.
    woken = datetime(2026, 5, 1, 9, 1, tzinfo=UTC)
    assert decide(parse({}), "email", None, {}, woken, None, slots, THROTTLE) is None
    assert slots.taken[woken] == 2


def test_a_journey_document_keeps_its_send_limit():
    raw = {
        "schema": "throughline.journey/v1",
        "name": "Launch",
        "throttle": {"max_sends_per_minute": 100},
        "nodes": [{"id": "start", "type": "trigger", "config": {"event": "x"}}],
        "edges": [],
    }
    document = graph.parse(raw)
    assert document.max_sends_per_minute == 100
    assert graph.to_dict(document)["throttle"] == {"max_sends_per_minute": 100}
    assert "throttle" not in graph.to_dict(graph.parse({**raw, "throttle": None}))
    _, problems = graph.check({**raw, "throttle": {"max_sends_per_minute": 0}})
    assert "throttle.max_sends_per_minute" in [p.field for p in problems]
    _, problems = graph.check({**raw, "throttle": {"per_hour": 5}})
    assert "throttle.per_hour" in [p.field for p in problems]
