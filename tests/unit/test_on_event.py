"""The order in which an arriving event is handled, as live execution and simulation drive it."""

from datetime import UTC, datetime, timedelta

from engine.execution.runner import (
    Candidate,
    Converted,
    Entered,
    EntryHistory,
    Exited,
    Refused,
    Resumed,
    RunState,
    Underway,
    on_event,
)
from engine.language import graph
from engine.language.nodes import Await
from engine.models import RunStatus

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CUSTOMER = {"id": "c-1", "traits": {}}


def document(**entry):
    return graph.parse(
        {
            "schema": "throughline.journey/v1",
            "name": "Paid",
            "entry": {"reentry": "after_exit", **entry},
            "goal": {"event": "paid"},
            "exit_on": [{"event": "unsubscribed"}],
            "nodes": [
                {"id": "start", "type": "trigger", "config": {"event": "cart"}},
                {
                    "id": "wait",
                    "type": "wait_for_event",
                    "config": {"event": "paid", "timeout": "PT1H"},
                },
                {"id": "end", "type": "exit", "config": {}},
            ],
            "edges": [
                {"from": "start", "to": "wait"},
                {"from": "wait", "port": "event", "to": "end"},
                {"from": "wait", "port": "timeout", "to": "end"},
            ],
        }
    )


def waiting(doc, key="run-1"):
    state = RunState(
        node="wait",
        status=RunStatus.waiting,
        trigger={"type": "cart"},
        event={"type": "cart"},
        entered_at=NOW - timedelta(hours=1),
        awaiting=Await("paid", None, None),
    )
    return Underway(key, doc, state)


def reactions(event, runs, journeys, history=None):
    asked = []

    def entries(journey):
        asked.append(journey.key)
        return history or EntryHistory()

    return list(on_event(event, CUSTOMER, runs, journeys, entries, NOW)), asked


def test_an_exit_rule_comes_first_and_ends_the_run():
    doc = document()
    run = waiting(doc)
    found, _ = reactions({"type": "unsubscribed"}, [run], [])
    assert [type(r) for r in found] == [Exited]
    assert found[0].reason == "exit on unsubscribed"
    assert run.state.status is RunStatus.exited


def test_the_goal_converts_then_the_awaited_event_resumes_the_same_run():
    doc = document()
    run = waiting(doc)
    found, _ = reactions({"type": "paid"}, [run], [])
    assert [type(r) for r in found] == [Converted, Resumed]
    assert run.state.converted_at == NOW
    assert found[1].resume.kind == "event"
    assert found[1].resume.event == {"type": "paid"}


def test_a_held_or_ended_run_does_not_react():
    doc = document()
    held = waiting(doc, "held")
    held.held = True
    ended = waiting(doc, "ended")
    ended.state.status = RunStatus.completed
    found, _ = reactions({"type": "paid"}, [held, ended], [])
    assert found == []
    assert held.state.converted_at is None


def test_entry_history_is_read_after_the_runs_reacted_and_only_on_a_matching_trigger():
    doc = document()
    order = []

    def entries(candidate):
        order.append("history")
        return EntryHistory()

    journey = Candidate("journey-1", doc)
    for event in ({"type": "paid"}, {"type": "cart"}):
        for reaction in on_event(
            event, CUSTOMER, [waiting(doc)], [journey], entries, NOW
        ):
            order.append(type(reaction).__name__)
        order.append("|")
    # "paid" reaches the goal and the awaited event but triggers nothing; "cart" triggers.
    assert order == ["Converted", "Resumed", "|", "history", "Entered", "|"]


def test_entry_rules_refuse_with_the_reason_and_allow_a_new_run_at_the_trigger():
    doc = document(max_entries=2)
    journey = Candidate("journey-1", doc)
    found, asked = reactions(
        {"type": "cart"}, [], [journey], EntryHistory(entries=2, active=False)
    )
    assert [type(r) for r in found] == [Refused]
    assert found[0].reason == "entered 2 times, the most allowed"
    assert asked == ["journey-1"]
    found, _ = reactions({"type": "cart"}, [], [journey], EntryHistory(1, False))
    assert [type(r) for r in found] == [Entered]
    assert found[0].state.node == "start"
    assert found[0].state.trigger == {"type": "cart"}
    assert found[0].rule
