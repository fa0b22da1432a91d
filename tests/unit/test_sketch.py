"""The publish review's drawing of a new version: rows, marks, and the removed steps."""

from engine.journeys.summaries import step_names
from webapp.designer.sketch import (
    CARD_H,
    CARD_W,
    GAP_Y,
    MARGIN,
    SUMMARY_CHARS,
    _outputs,
    sketch,
)


def _doc(*nodes, edges=()):
    return {
        "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
        "edges": [{"from": a, "to": b} for a, b in edges],
    }


OLD = _doc(
    ("start", "trigger", {"event": "signed_up"}),
    ("hold", "wait", {"duration": "P1D"}),
    ("nudge", "send", {"channel": "sms", "message": {"text": "Hi"}}),
    edges=[("start", "hold"), ("hold", "nudge")],
)
NEW = _doc(
    ("start", "trigger", {"event": "signed_up"}),
    ("hold", "wait", {"duration": "PT2H"}),
    ("mail", "send", {"channel": "email", "message": {"subject": "Hello"}}),
    ("loose", "exit", {}),
    edges=[("start", "hold"), ("hold", "mail"), ("mail", "start")],
)


def test_steps_sit_a_row_below_the_step_that_leads_to_them_and_changes_are_marked():
    drawn = sketch(
        NEW,
        OLD,
        step_names(NEW, {}),
        step_names(OLD, {}),
        added={"mail", "loose"},
        changed={"hold"},
        removed={"nudge"},
        waiting={"hold": 3},
    )
    cards = {card.id: card for card in drawn.cards}
    row = lambda card: (card.y - MARGIN) // (CARD_H + GAP_Y)  # noqa: E731
    assert [row(cards[i]) for i in ("start", "hold", "mail", "loose")] == [0, 1, 2, 3]
    assert {i: c.status for i, c in cards.items()} == {
        "start": "same",
        "hold": "changed",
        "mail": "added",
        "loose": "added",
        "nudge": "removed",
    }
    assert cards["nudge"].y > cards["loose"].y  # the removed steps come last
    assert cards["hold"].waiting == 3 and cards["hold"].summary == "Wait 2 hours"
    assert sum(line.back for line in drawn.lines) == 1  # mail -> start goes back up
    (back,) = [line for line in drawn.lines if line.back]
    lane = max(int(part[1:]) for part in back.path.split() if part.startswith("H"))
    assert lane > max(card.x + CARD_W for card in drawn.cards)  # up right of every card
    assert (
        drawn.description == "The new version: 4 steps, 2 added, 1 changed, 1 removed"
    )


def test_a_first_version_marks_nothing():
    drawn = sketch(NEW, None, step_names(NEW, {}), {}, set(), set(), set(), {})
    assert {card.status for card in drawn.cards} == {"same"}
    assert drawn.removed_label_y is None


def _cart():
    document = _doc(
        ("start", "trigger", {"event": "cart_abandoned"}),
        ("wait", "wait_for_event", {"event": "order_completed", "timeout": "PT1H"}),
        ("vip", "condition", {"rule": {"trait": "tier", "op": "eq", "value": "vip"}}),
        ("call", "send", {"channel": "desk", "message": {"task": "Call"}}),
        ("mail", "send", {"channel": "email", "message": {"subject": "Hi"}}),
        ("end", "exit", {}),
    )
    document["edges"] = [
        {"from": "start", "to": "wait"},
        {"from": "wait", "port": "event", "to": "end"},
        {"from": "wait", "port": "timeout", "to": "vip"},
        {"from": "vip", "port": "true", "to": "call"},
        {"from": "vip", "port": "false", "to": "mail"},
        {"from": "call", "to": "end"},
        {"from": "mail", "port": "error", "to": "end"},
        {"from": "mail", "to": "end"},
    ]
    return document


def test_a_step_sits_below_every_step_leading_to_it_and_long_edges_go_round():
    document = _cart()
    drawn = sketch(
        document, None, step_names(document, {}), {}, set(), set(), set(), {}
    )
    cards = {card.id: card for card in drawn.cards}
    row = lambda card: (card.y - MARGIN) // (CARD_H + GAP_Y)  # noqa: E731
    rows = {i: row(c) for i, c in cards.items()}
    assert rows == {"start": 0, "wait": 1, "vip": 2, "call": 3, "mail": 3, "end": 4}
    assert not any(line.back for line in drawn.lines)  # the exit is below the sends
    words = [line.words for line in drawn.lines]
    assert words == [
        "",
        "got order_completed",
        "timed out",
        "yes",
        "no",
        "",
        "if it fails",
        "",
    ]
    # The wait's way to the exit skips three rows: down a lane left of every card.
    lane = drawn.lines[1].path.split(" ")[2]
    assert lane.startswith("H") and int(lane[1:]) < min(c.x for c in drawn.cards)
    # Each output leaves from its own place, as on the canvas: the send's usual way on in
    # the middle, "if it fails" left of it.
    mail = cards["mail"]
    error, usual = drawn.lines[6], drawn.lines[7]
    assert error.x == mail.x + CARD_W // 6 and usual.x == mail.x + CARD_W // 2
    assert _outputs("send", {}, ["out", "error", "suppressed"]) == [
        "error",
        "out",
        "suppressed",
    ]


def test_text_wider_than_a_card_is_cut():
    document = _doc(
        ("start", "trigger", {"event": "a_rather_long_event_name_for_a_card"}),
    )
    drawn = sketch(
        document, None, step_names(document, {}), {}, set(), set(), set(), {}
    )
    (card,) = drawn.cards
    assert len(card.short_summary) == SUMMARY_CHARS and card.short_summary.endswith("…")
