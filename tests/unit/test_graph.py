import copy
import json

import pytest

from engine.journeys.starters import FOLDER as STARTERS
from engine.language import graph
from engine.language.nodes import CheckContext

DATA = STARTERS
SAMPLES = sorted(DATA.glob("*.json"))
CHANNELS = CheckContext(
    channels=frozenset({"email", "sms", "app", "web", "support-desk"})
)


def sample(name="cart_recovery"):
    return json.loads((DATA / f"{name}.json").read_text())


def problems_of(raw, ctx=CHANNELS):
    document, problems = graph.check(raw, ctx)
    return [p.to_dict() for p in problems]


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_samples_are_valid_and_round_trip_losslessly(path):
    raw = json.loads(path.read_text())
    document = graph.parse(raw)
    assert graph.validate(document, CHANNELS) == []
    exported = graph.to_dict(document)
    assert exported == raw  # layout, notes and every setting survive
    assert graph.parse(json.loads(json.dumps(exported))) == document


def test_the_design_example_is_among_the_samples():
    raw = sample()
    assert raw["name"] == "Cart recovery" and raw["layout"] == {
        "start": {"x": 80, "y": 60}
    }


def test_export_is_canonical():
    raw = sample()
    del raw["entry"]
    raw["edges"][0]["port"] = "out"
    exported = graph.to_dict(graph.parse(raw))
    assert exported["entry"] == {"reentry": "after_exit", "max_entries": None}
    assert "port" not in exported["edges"][0]


def test_structural_problems_are_all_listed_at_once():
    raw = {
        "schema": graph.SCHEMA,
        "nodes": [{"id": "a"}, "b", {"id": "bad id!", "type": "exit"}],
        "edges": [{"from": "a"}],
        "colour": "red",
    }
    with pytest.raises(graph.DocumentError) as raised:
        graph.parse(raw)
    messages = [p.message for p in raised.value.problems]
    assert "“colour” is not part of a journey; remove it" in messages
    assert "the journey needs a name" in messages
    assert "step 1 of the file needs a type, e.g. send or wait" in messages
    assert (
        "step 2 of the file cannot be read: a step has an id, a type and its settings"
        in messages
    )
    assert any("step 3 of the file needs an id" in m for m in messages)
    assert any(
        m.startswith("connection 1 of the file cannot be read") for m in messages
    )
    # The API keeps the place in the document apart from the words.
    fields = {p.field for p in raised.value.problems}
    assert {"colour", "nodes[0].type", "nodes[1]", "nodes[2].id"} <= fields


def test_an_unknown_schema_is_named():
    with pytest.raises(
        graph.DocumentError,
        match="the file's journey format \\(“throughline.journey/v9”\\) is not one",
    ):
        graph.parse({**sample(), "schema": "throughline.journey/v9"})


def test_older_schemas_are_upgraded_through_the_chain(monkeypatch):
    def v0_to_v1(document):
        """v0 called the trigger `start_event`."""
        upgraded = copy.deepcopy(document)
        upgraded["schema"] = graph.SCHEMA
        for node in upgraded["nodes"]:
            if "start_event" in node["config"]:
                node["config"]["event"] = node["config"].pop("start_event")
        return upgraded

    monkeypatch.setitem(graph.UPGRADES, "throughline.journey/v0", v0_to_v1)
    old = sample()
    old["schema"] = "throughline.journey/v0"
    old["nodes"][0]["config"] = {"start_event": "cart_abandoned"}
    document = graph.parse(old)
    assert document.trigger().config == {"event": "cart_abandoned"}


def _edit(change):
    raw = sample()
    change(raw)
    return problems_of(raw)


def test_ids_must_be_unique():
    found = _edit(
        lambda d: d["nodes"].append({"id": "vip", "type": "exit", "config": {}})
    )
    assert {
        "node": "vip",
        "message": "two steps have the id “vip”; give each its own",
        "field": "id",
    } in found


def test_exactly_one_trigger():
    none = _edit(
        lambda d: d["nodes"].__setitem__(
            0, {"id": "start", "type": "exit", "config": {}}
        )
    )
    assert any(p["message"].startswith("add a trigger") for p in none)
    two = _edit(
        lambda d: (
            d["nodes"].append(
                {"id": "t2", "type": "trigger", "config": {"event": "x"}}
            ),
            d["edges"].append({"from": "t2", "to": "end"}),
        )
    )
    assert any(p["node"] == "t2" and "exactly one trigger" in p["message"] for p in two)


def test_edges_name_existing_nodes_and_ports():
    found = _edit(
        lambda d: d["edges"].extend(
            [
                {"from": "ghost", "to": "end"},
                {"from": "vip", "port": "maybe", "to": "end"},
                {"from": "mail", "to": "nowhere"},
            ]
        )
    )
    messages = {(p["node"], p["message"]) for p in found}
    assert (
        None,
        "a connection leaves “ghost”, which is not a step of this journey",
    ) in messages
    assert (
        "vip",
        "a connection leaves an output “maybe” this step does not have; "
        "connect one of its outputs instead",
    ) in messages
    assert (
        "mail",
        "a connection goes to “nowhere”, which is not a step of this journey",
    ) in messages


def test_a_port_leads_to_one_place_and_nothing_leads_into_the_trigger():
    found = _edit(
        lambda d: d["edges"].extend(
            [{"from": "mail", "to": "call"}, {"from": "end", "to": "start"}]
        )
    )
    assert any(
        p["node"] == "mail" and "has two connections" in p["message"] for p in found
    )
    assert any(
        p["node"] == "start" and "nothing may lead into the trigger" in p["message"]
        for p in found
    )


def test_required_ports_must_be_connected():
    found = _edit(
        lambda d: d["edges"].remove({"from": "vip", "port": "false", "to": "mail"})
    )
    assert {
        "node": "vip",
        "message": "connect its “no” output to the next step",
        "field": "port.false",
    } in found


def test_every_node_is_reachable_from_the_trigger():
    def orphan(d):
        d["nodes"].append(
            {"id": "lost", "type": "wait", "config": {"duration": "PT1H"}}
        )
        d["edges"].append({"from": "lost", "to": "end"})

    assert {
        "node": "lost",
        "message": "no path from the trigger reaches this step",
    } in _edit(orphan)


def test_every_cycle_passes_through_a_wait():
    def spin(d):
        d["edges"] = [e for e in d["edges"] if e["from"] != "call"]
        d["edges"].append({"from": "call", "to": "vip"})

    found = _edit(spin)
    assert any(
        "the loop" in p["message"] and "has no wait" in p["message"] for p in found
    )

    def loop_with_wait(d):
        d["edges"] = [e for e in d["edges"] if e["from"] != "call"]
        d["edges"].append({"from": "call", "to": "wait"})

    assert _edit(loop_with_wait) == []


def test_every_config_matches_its_schema_and_channels_exist():
    def breakit(d):
        d["nodes"][1]["config"]["timeout"] = "an hour"
        d["nodes"][4]["config"]["channel"] = "pigeon"

    found = _edit(breakit)
    assert {p["node"]: p["field"] for p in found} == {
        "wait": "config.timeout",
        "mail": "config.channel",
    }
    assert (
        problems_of(json.loads(json.dumps(sample())), CheckContext(channels=None)) == []
    )


def test_unknown_node_types_and_journey_rules():
    def breakit(d):
        d["nodes"][2]["type"] = "maybe"
        d["entry"] = {"reentry": "sometimes", "max_entries": 0}
        d["goal"]["within"] = "soon"
        d["exit_on"] = [{"event": "unsubscribed", "where": {"op": "eq"}}]

    found = _edit(breakit)
    fields = {(p["node"], p.get("field")) for p in found}
    assert ("vip", "type") in fields
    assert {
        (None, "entry.reentry"),
        (None, "entry.max_entries"),
        (None, "goal.within"),
        (None, "exit_on[0].where"),
    } <= fields


def test_a_node_label_is_optional_kept_on_export_and_checked():
    raw = sample()
    raw["nodes"][1]["label"] = "  Give them an hour  "
    document = graph.parse(raw)
    assert document.node("wait").label == "Give them an hour"
    assert document.node("start").label is None
    exported = graph.to_dict(document)
    assert exported["nodes"][1]["label"] == "Give them an hour"
    assert "label" not in exported["nodes"][0]
    assert graph.parse(exported) == document

    raw["nodes"][1]["label"] = "x" * 81
    raw["nodes"][2]["label"] = ["not", "text"]
    raw["nodes"][3]["label"] = "two\nlines"
    found = problems_of(raw)
    assert [(p["node"], p["field"]) for p in found] == [
        ("wait", "nodes[1].label"),
        ("vip", "nodes[2].label"),
        ("call", "nodes[3].label"),
    ]
    assert found[0]["message"] == "a label is one line of at most 80 characters"
