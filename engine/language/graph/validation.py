"""Validation: every problem of a parsed document, each with its node and a sentence."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from engine import durations
from engine.language import nodes, rules
from engine.language.graph.document import (
    DESCRIPTION_LENGTH,
    NAME_LENGTH,
    REENTRY,
    Document,
    DocumentError,
    Node,
    Problem,
)
from engine.language.graph.reading import parse
from engine.language.nodes import _words


def _problems_of_entry(document: Document) -> Iterator[Problem]:
    entry = document.entry
    if entry.reentry not in REENTRY:
        yield Problem(
            None,
            "choose whether a customer may enter again: never, after leaving, or always",
            "entry.reentry",
        )
    max_entries = entry.max_entries
    if max_entries is not None and (
        isinstance(max_entries, bool)
        or not isinstance(max_entries, int)
        or max_entries < 1
    ):
        yield Problem(
            None,
            "the most times a customer may enter is a whole number of at least 1, "
            "or empty for no limit",
            "entry.max_entries",
        )
    most = document.max_sends_per_minute
    if most is not None and (
        isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= 100_000
    ):
        yield Problem(
            None,
            "the most sends a minute is a whole number from 1 to 100,000, "
            "or empty for no limit",
            "throttle.max_sends_per_minute",
        )
    rules_to_check = (
        [("goal", "the goal", document.goal)] if document.goal else []
    ) + [
        (f"exit_on[{i}]", f"exit event {i + 1}", rule)
        for i, rule in enumerate(document.exit_on)
    ]
    for where, what, rule in rules_to_check:
        if not rule.event.strip():
            yield Problem(None, f"name the event of {what}", f"{where}.event")
        if rule.where is not None:
            for path, message in rules.problems(rule.where, f"{where}.where"):
                yield Problem(None, f"{what}: {message}", path)
    if document.goal is not None:
        try:
            durations.parse(document.goal.within)
        except durations.DurationError as error:
            yield Problem(None, f"the time to reach the goal: {error}", "goal.within")


def _wait_free_cycles(document: Document, known: dict[str, Node]) -> list[list[str]]:
    """Cycles that pass through no waiting node (each would spin forever)."""
    waiting = {
        i
        for i, n in known.items()
        if n.type in nodes.REGISTRY and nodes.get(n.type).waits
    }
    graph: dict[str, list[str]] = {i: [] for i in known if i not in waiting}
    for edge in document.edges:
        if edge.source in graph and edge.target in graph:
            graph[edge.source].append(edge.target)
    cycles, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the path, 2 done
    for start in graph:
        if state[start]:
            continue
        path, stack = [start], [iter(graph[start])]
        state[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state[following] == 1:
                cycles.append(path[path.index(following) :])
            elif state[following] == 0:
                state[following] = 1
                path.append(following)
                stack.append(iter(graph[following]))
    return cycles


def length_problems(document: Document) -> list[Problem]:
    """A name or description too long to list: refused when the document is saved."""
    problems = []
    if len(document.name) > NAME_LENGTH:
        problems.append(
            Problem(
                None,
                f"the name is longer than {NAME_LENGTH} characters; shorten it",
                "name",
            )
        )
    if document.description and len(document.description) > DESCRIPTION_LENGTH:
        problems.append(
            Problem(
                None,
                f"the description is longer than {DESCRIPTION_LENGTH:,} characters;"
                " shorten it",
                "description",
            )
        )
    return problems


def validate(
    document: Document, ctx: nodes.CheckContext | None = None
) -> list[Problem]:
    """Every problem of a parsed document, each with its node (or edge) and a sentence."""
    ctx = ctx or nodes.CheckContext()
    problems: list[Problem] = []
    if not document.name.strip():
        problems.append(Problem(None, "the journey needs a name", "name"))
    problems += length_problems(document)
    problems += _problems_of_entry(document)

    known: dict[str, Node] = {}
    for node in document.nodes:
        if node.id in known:
            problems.append(
                Problem(
                    node.id,
                    f"two steps have the id “{node.id}”; give each its own",
                    "id",
                )
            )
            continue
        known[node.id] = node
        if node.type not in nodes.REGISTRY:
            problems.append(
                Problem(
                    node.id,
                    f"“{node.type}” is not a kind of step Throughline has; "
                    "replace it with one from the step list",
                    "type",
                )
            )
            continue
        step = replace(ctx, step=nodes.title(node.type, node.label))
        for where, message in nodes.get(node.type).check(node.config, step):
            problems.append(Problem(node.id, message, f"config.{where}"))
    triggers = [n for n in known.values() if n.type == "trigger"]
    if not triggers:
        problems.append(
            Problem(None, "add a trigger: every journey starts with exactly one")
        )
    for extra in triggers[1:]:
        problems.append(
            Problem(
                extra.id,
                "a journey has exactly one trigger; remove this one or the other",
            )
        )

    def ports_of(node: Node) -> list[nodes.Port]:
        return (
            nodes.get(node.type).ports(node.config, ctx)
            if node.type in nodes.REGISTRY
            else []
        )

    used: dict[tuple[str, str], int] = {}
    for index, edge in enumerate(document.edges):
        source, target = known.get(edge.source), known.get(edge.target)
        if source is None:
            problems.append(
                Problem(
                    None,
                    f"a connection leaves “{edge.source}”, which is not a step "
                    "of this journey",
                    edge=index,
                )
            )
        elif (
            source.type in nodes.REGISTRY
            and nodes.get(source.type).knows_ports(ctx)
            and edge.port not in [p.name for p in ports_of(source)]
        ):
            problems.append(
                Problem(
                    source.id,
                    f"a connection leaves an output “{edge.port}” this step does not "
                    "have; connect one of its outputs instead",
                    edge=index,
                )
            )
        if target is None:
            problems.append(
                Problem(
                    edge.source if source else None,
                    f"a connection goes to “{edge.target}”, which is not a step "
                    "of this journey",
                    edge=index,
                )
            )
        elif target.type == "trigger":
            problems.append(
                Problem(target.id, "nothing may lead into the trigger", edge=index)
            )
        if source is not None and (edge.source, edge.port) in used:
            problems.append(
                Problem(
                    source.id,
                    f"{_words.output(source.type, edge.port)} has two connections; "
                    "a customer can follow only one",
                    edge=index,
                )
            )
        used.setdefault((edge.source, edge.port), index)
    for node in known.values():
        for port in ports_of(node):
            if port.required and (node.id, port.name) not in used:
                problems.append(
                    Problem(
                        node.id,
                        f"connect {_words.output(node.type, port.name)} to the next step",
                        f"port.{port.name}",
                    )
                )

    if triggers:
        reached, frontier = {triggers[0].id}, [triggers[0].id]
        while frontier:
            for edge in document.edges_from(frontier.pop()):
                if edge.target in known and edge.target not in reached:
                    reached.add(edge.target)
                    frontier.append(edge.target)
        for node in known.values():
            if node.id not in reached and node.type != "trigger":
                problems.append(
                    Problem(node.id, "no path from the trigger reaches this step")
                )
    for cycle in _wait_free_cycles(document, known):
        loop = " -> ".join([*cycle, cycle[0]])
        problems.append(
            Problem(
                cycle[0],
                f"the loop {loop} has no wait: a customer would go round it forever",
            )
        )
    return problems


def check(
    raw: Any, ctx: nodes.CheckContext | None = None
) -> tuple[Document | None, list[Problem]]:
    """Parse and validate: the document (None if unreadable) and every problem found."""
    try:
        document = parse(raw)
    except DocumentError as error:
        return None, error.problems
    return document, validate(document, ctx)
