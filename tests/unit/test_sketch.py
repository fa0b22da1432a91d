"""The publish review's drawing of a new version: rows, marks, and the removed steps."""

from engine.journeys.summaries import step_names
from webapp.designer.sketch import CARD_H, GAP_Y, MARGIN, sketch


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
    assert (
        drawn.description == "The new version: 4 steps, 2 added, 1 changed, 1 removed"
    )


def test_a_first_version_marks_nothing():
    drawn = sketch(NEW, None, step_names(NEW, {}), {}, set(), set(), set(), {})
    assert {card.status for card in drawn.cards} == {"same"}
    assert drawn.removed_label_y is None
