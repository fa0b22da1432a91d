"""Random valid journeys and random event sequences keep the runner's invariants."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.execution.simulate import simulate
from engine.language import graph, nodes

EVENTS = ["view", "cart", "buy", "open"]
INNER = [
    "wait",
    "wait_until",
    "wait_for_event",
    "condition",
    "switch",
    "split",
    "send",
    "webhook",
    "update_profile",
]
WAITING = {"wait", "wait_until", "wait_for_event"}
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CHANNELS = nodes.CheckContext(channels=frozenset({"email", "sms"}))


def _config(draw, kind):
    def leaf():
        return {
            "field": "event.properties.n",
            "op": draw(st.sampled_from(["eq", "gt", "lte"])),
            "value": draw(st.integers(0, 3)),
        }

    if kind == "wait":
        return {"duration": draw(st.sampled_from(["PT1M", "PT1H", "P1D"]))}
    if kind == "wait_until":
        return {"time": draw(st.sampled_from(["00:00", "09:30", "23:59"]))}
    if kind == "wait_for_event":
        return {
            "event": draw(st.sampled_from(EVENTS)),
            "timeout": draw(st.sampled_from(["PT10M", "PT2H"])),
        }
    if kind == "condition":
        return {
            "rule": {"any": [leaf(), {"not": leaf()}]}
            if draw(st.booleans())
            else leaf()
        }
    if kind == "switch":
        return {
            "cases": [
                {"port": f"c{i}", "rule": leaf()}
                for i in range(draw(st.integers(1, 3)))
            ]
        }
    if kind == "split":
        first = draw(st.integers(1, 99))
        return {
            "branches": [
                {"port": "a", "percent": first},
                {"port": "b", "percent": 100 - first, "holdout": True},
            ]
        }
    if kind == "send":
        return {
            "channel": "email",
            "message": {
                "subject": "Hi {{ customer.traits.name }} {{ event.properties.n }}"
            },
            "fallback_channel": "sms",
        }
    if kind == "webhook":
        return {
            "url": "https://example.com/hook",
            "body": {"n": "{{ event.properties.n }}"},
        }
    return {"increment": {"count": 1}}


@st.composite
def journeys(draw, allow_loops=True):
    kinds = draw(st.lists(st.sampled_from(INNER), min_size=1, max_size=10))
    doc_nodes = [
        {
            "id": "n0",
            "type": "trigger",
            "config": {"event": draw(st.sampled_from(EVENTS))},
        }
    ]
    doc_nodes += [
        {"id": f"n{i}", "type": kind, "config": _config(draw, kind)}
        for i, kind in enumerate(kinds, 1)
    ]
    last = len(doc_nodes)
    doc_nodes.append({"id": f"n{last}", "type": "exit", "config": {}})
    edges = []
    for index, node in enumerate(doc_nodes[:-1]):
        ports = [
            p.name for p in nodes.get(node["type"]).ports(node["config"]) if p.required
        ]
        waits_before = [
            j for j in range(1, index + 1) if doc_nodes[j]["type"] in WAITING
        ]
        for position, port in enumerate(ports):
            if position == 0:
                target = index + 1  # a chain: every node is reachable
            elif allow_loops and waits_before and draw(st.booleans()):
                target = draw(
                    st.sampled_from(waits_before)
                )  # a loop back through a wait
            else:
                target = draw(st.integers(index + 1, last))
            edges.append({"from": node["id"], "port": port, "to": f"n{target}"})
    entry = {
        "reentry": draw(st.sampled_from(["never", "after_exit", "always"])),
        "max_entries": draw(st.sampled_from([None, 1, 3])),
    }
    return {
        "schema": graph.SCHEMA,
        "name": "random",
        "entry": entry,
        "goal": {"event": "buy", "within": "P1D"},
        "exit_on": [
            {
                "event": "open",
                "where": {"field": "event.properties.n", "op": "eq", "value": 3},
            }
        ],
        "nodes": doc_nodes,
        "edges": edges,
        "layout": {},
    }


events = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(EVENTS),
            "properties": st.fixed_dictionaries({"n": st.integers(0, 3)}),
            "after": st.sampled_from(["PT0S", "PT5M", "PT1H", "P1D"]),
        }
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(raw=journeys(), timeline=events, customer=st.sampled_from(["c-1", "c-2", "c-3"]))
def test_runs_stay_on_the_graph_and_end_or_wait(raw, timeline, customer):
    document = graph.parse(raw)
    assert graph.validate(document, CHANNELS) == []
    request = {
        "customer": {"id": customer, "traits": {"name": "Ada"}},
        "events": timeline,
    }
    result = simulate(document, request, START)
    assert result == simulate(document, request, START)  # deterministic

    by_run: dict[int, list[dict]] = {}
    for step in result["steps"]:
        if step["run"] is not None:
            by_run.setdefault(step["run"], []).append(step)
    for run in result["runs"]:
        assert run["status"] in {
            "waiting",
            "completed",
            "exited",
            "failed",
        }  # never left mid-way
        assert run["status"] != "failed"  # valid journeys never fail here
        steps = by_run[run["run"]]
        assert steps[0]["node"] == "n0"
        for previous, current in zip(steps, steps[1:], strict=False):
            assert previous["outcome"] not in {"completed", "exited"}, (
                "a run moved after it ended"
            )
            if previous["outcome"] in {"waiting", "converted"}:
                assert current["node"] == previous["node"]  # it resumes where it waited
            else:
                assert current["node"] == document.next_node(
                    previous["node"], previous["outcome"]
                )
        assert (
            run["node"] == steps[-1]["node"]
        )  # one place at a time: where its last step is

    split_sides: dict[str, set[str]] = {}
    for step in result["steps"]:
        if step["type"] == "split":
            split_sides.setdefault(step["node"], set()).add(step["outcome"])
    assert all(len(sides) == 1 for sides in split_sides.values())
