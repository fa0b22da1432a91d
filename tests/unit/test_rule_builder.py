"""The rule builder: engine rules to nested groups and conditions, posted fields and back."""

from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from engine.journeys.starters import CATALOGUE, document
from engine.language import rules
from webapp.designer import rule_builder as rb
from webapp.designer.editors import RuleEditor


def _starter_rules() -> list[tuple[str, Any]]:
    found = []
    for starter in CATALOGUE:
        doc = document(starter.key)
        for node in doc["nodes"]:
            config = node["config"]
            for key in ("rule", "where"):
                if key in config:
                    found.append((f"{starter.key}:{node['id']}.{key}", config[key]))
            for index, case in enumerate(config.get("cases", [])):
                found.append(
                    (f"{starter.key}:{node['id']}.cases[{index}]", case["rule"])
                )
        if (doc.get("goal") or {}).get("where"):
            found.append((f"{starter.key}:goal", doc["goal"]["where"]))
        for index, item in enumerate(doc.get("exit_on", [])):
            if "where" in item:
                found.append((f"{starter.key}:exit_on[{index}]", item["where"]))
    return found


STARTER_RULES = _starter_rules()
MORE_RULES = [
    {"not": {"all": [{"field": "event.type", "op": "eq", "value": "a"}]}},
    {"not": {"not": {"field": "customer.email", "op": "exists"}}},
    {"any": [{"field": "event.properties.n", "op": "in", "value": [1, 2.5, -3]}]},
    {"field": "event.properties.n", "op": "in", "value": [1, "a", None]},
    {"field": "event.properties.n", "op": "eq", "value": None},
    {"field": "event.properties.n", "op": "eq", "value": 4.0},
    {"field": "event.properties.n", "op": "lt", "value": 1e20},
    {"field": "customer.traits.vip", "op": "ne", "value": False},
    {"field": "customer.traits.note", "op": "eq", "value": "two\nlines"},
    {"field": "customer.traits.note", "op": "eq", "value": "  spaced "},
    {"field": "customer.traits.tags", "op": "not_in", "value": [" a", "b"]},
    {"field": "customer.traits.tags", "op": "in", "value": []},
    {"field": "customer.traits.tags", "op": "contains", "value": {"k": 1}},
    {"all": []},
    {"all": [{"any": [{"all": [{"field": "context.x", "op": "gte", "value": 0}]}]}]},
]


def _round_trip(rule: Any) -> Any:
    """Load into the builder, post what the page would post, read it back, save."""
    tree = rb.from_rule(rule)
    posted = MultiDict(rb.fields(tree, "n-x-rule"))
    return rb.to_rule(rb.parse(posted, "n-x-rule"))[0]


def test_the_starters_have_rules_to_test():
    assert len(STARTER_RULES) >= 7


@pytest.mark.parametrize(
    ("where", "rule"), STARTER_RULES, ids=[w for w, _ in STARTER_RULES]
)
def test_every_starter_rule_loads_into_the_builder_and_saves_back_identical(
    where, rule
):
    assert rules.check(rule) == []
    assert rb.to_rule(rb.from_rule(rule))[0] == rule
    assert _round_trip(rule) == rule


@pytest.mark.parametrize("rule", MORE_RULES)
def test_other_rule_shapes_survive_the_builder(rule):
    assert _round_trip(rule) == rule


def test_values_take_the_type_that_gives_them_back():
    shown = rb.from_rule(
        {
            "all": [
                {"field": "event.a", "op": "eq", "value": 3},
                {"field": "event.a", "op": "eq", "value": True},
                {"field": "event.a", "op": "eq", "value": "3"},
                {"field": "event.a", "op": "in", "value": ["x", "y"]},
                {"field": "event.a", "op": "in", "value": [1, 2]},
                {"field": "event.a", "op": "in", "value": ["x", 1]},
                {"field": "event.a", "op": "exists"},
            ]
        }
    )
    assert [(c.type, c.value) for c in shown.members] == [
        ("number", "3"),
        ("boolean", "true"),
        ("text", "3"),
        ("list", "x\ny"),
        ("numbers", "1\n2"),
        ("json", '["x", 1]'),
        ("text", ""),
    ]


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        (
            {"field": "event.a", "op": "nearly", "value": 1},
            "“nearly” is not a comparison",
        ),
        (
            {"field": "event.a", "op": "eq", "value": 1, "x": 2},
            "settings it cannot show (field, op, value, x)",
        ),
        ({"all": [], "any": []}, "other settings too"),
        ({"op": "eq", "value": 1}, "has no field"),
        ({"field": "event.a", "op": "exists", "value": 1}, "exists takes no value"),
        ({"field": "event.a", "op": "eq"}, "eq needs a value"),
        ({"any": {"field": "event.a"}}, "of “any” are not a list"),
        ([1], "neither a condition nor a group"),
    ],
)
def test_a_rule_the_builder_cannot_show_says_why_and_stays_json(rule, why):
    with pytest.raises(
        rb.Unshowable, match=why.replace("(", r"\(").replace(")", r"\)")
    ):
        rb.from_rule(rule)
    editor = RuleEditor("rule")
    editor.load(rule)
    assert editor.mode == "json" and editor.rule == rule
    assert editor.note and why in editor.note
    posted = MultiDict(editor.pairs())
    again = RuleEditor("rule")
    again.read(posted)
    assert again.rule == rule


def test_parsing_orders_members_by_number_and_ignores_strays():
    posted = MultiDict(
        [
            ("r.mode", "builder"),
            ("r.0.kind", "any"),
            ("r.0.10.field", "event.ten"),
            ("r.0.10.op", "exists"),
            ("r.0.2.field", "event.two"),
            ("r.0.2.op", "exists"),
            ("r.0.2.field.extra", "x"),
            ("r.5.1.field", "event.orphan"),
            ("r.0.3.7.field", "event.no_group"),
            ("other.0.kind", "all"),
        ]
    )
    rule, _places = rb.to_rule(rb.parse(posted, "r"))
    assert rule == {
        "any": [
            {"field": "event.two", "op": "exists"},
            {"field": "event.ten", "op": "exists"},
        ]
    }
    assert rb.parse(MultiDict([("r.mode", "builder")]), "r") is None


def test_parsing_mends_what_the_page_cannot_show():
    posted = MultiDict(
        [
            ("r.0.kind", "not"),
            ("r.0.0.field", "event.a"),
            ("r.0.0.op", "in"),
            ("r.0.0.type", "number"),
            ("r.0.0.value", "4"),
            ("r.0.1.field", "event.b"),
            ("r.0.1.op", "bogus"),
            ("r.0.1.type", "list"),
            ("r.0.1.value", "x\ny"),
        ]
    )
    rule, _places = rb.to_rule(rb.parse(posted, "r"))
    assert rule == {
        "not": {
            "all": [
                {"field": "event.a", "op": "in", "value": [4]},
                {"field": "event.b", "op": "eq", "value": "x"},
            ]
        }
    }


@pytest.mark.parametrize(
    ("kind", "value", "error"),
    [
        ("number", "abc", "Write a number, such as 42 or 9.5"),
        ("number", "", "Write a number, such as 42 or 9.5"),
        ("number", "inf", "Write a number, such as 42 or 9.5"),
        ("boolean", "yes", "Choose true or false"),
        ("list", "\n \n", "Write at least one value, one per line"),
        ("numbers", "1\nx", "Line 2: 'x' is not a number"),
        ("json", "{oops", "This is not JSON: Expecting property name"),
    ],
)
def test_a_value_that_cannot_be_read_is_marked_on_its_condition(kind, value, error):
    op = "in" if kind in {"list", "numbers"} else "eq"
    tree = rb.Group("all", [rb.Condition("event.a", op, kind, value)])
    rb.to_rule(tree)
    assert rb.has_errors(tree)
    assert tree.members[0].errors[0].startswith(error)


def test_the_engines_problems_land_on_the_condition_or_group_they_concern():
    tree = rb.from_rule(
        {
            "all": [
                {"field": "event.a", "op": "eq", "value": 1},
                {
                    "any": [
                        {"field": "event.b", "op": "eq", "value": 1},
                        {"field": "nowhere.c", "op": "eq", "value": 1},
                    ]
                },
                {"any": []},
            ]
        }
    )
    rb.annotate(tree)
    first, group, empty = tree.members
    assert first.errors == [] and tree.errors == []
    assert group.errors == [] and group.members[0].errors == []
    assert group.members[1].errors == [
        "The field “nowhere.c” must start with trigger, event, customer or context, "
        "then a name, e.g. customer.traits.tier"
    ]
    assert empty.errors == ["Add at least one condition to this group"]
    bare = rb.from_rule({"field": "x", "op": "eq", "value": 1})
    rb.annotate(bare)
    assert bare.members[0].errors[0].startswith("The field “x” must start")
    assert rb.annotate(bare) == {"field": "x", "op": "eq", "value": 1}
    assert len(bare.members[0].errors) == 1  # annotating again says it once


def test_an_empty_field_is_asked_for_once():
    tree = rb.new_root()
    rb.annotate(tree)
    assert tree.members[0].errors == [
        "Name the field to compare, e.g. customer.traits.tier"
    ]


def test_adding_and_removing_keeps_groups_whole():
    tree = rb.from_rule({"field": "event.a", "op": "exists"})
    assert (
        rb.add(tree, "0", rb.Group("all", [rb.Condition("event.b", "exists")])) == "0.1"
    )
    assert rb.add(tree, "0.1", rb.Condition("event.c", "exists")) == "0.1.1"
    assert rb.add(tree, "0.9", rb.Condition()) is None
    assert rb.add(tree, "0.0", rb.Condition()) is None  # a condition holds nothing
    assert rb.to_rule(tree)[0] == {
        "all": [
            {"field": "event.a", "op": "exists"},
            {
                "all": [
                    {"field": "event.b", "op": "exists"},
                    {"field": "event.c", "op": "exists"},
                ]
            },
        ]
    }
    assert rb.remove(tree, "0.1.0") == "0.1"
    assert rb.remove(tree, "0.1.0") == "0"  # the emptied group goes too
    assert rb.to_rule(tree)[0] == {"field": "event.a", "op": "exists"}  # bare again
    assert rb.remove(tree, "0") is None  # the root stays
    assert rb.remove(tree, "0.0") == "0" and tree.members == []


def test_a_not_group_holds_one_member():
    tree = rb.from_rule({"not": {"field": "event.a", "op": "exists"}})
    assert rb.add(tree, "0", rb.Condition("event.b", "exists")) == "0.0.1"
    assert rb.to_rule(tree)[0] == {
        "not": {
            "all": [
                {"field": "event.a", "op": "exists"},
                {"field": "event.b", "op": "exists"},
            ]
        }
    }
    empty = rb.Group("not", [])
    rb.to_rule(empty)
    assert empty.errors == ["Add the condition this negates"]


@pytest.mark.parametrize(
    ("op", "kind", "value", "after"),
    [
        ("gt", "text", "", "number"),
        ("gt", "text", "12.5", "number"),
        ("gt", "text", "2026-01-01", "text"),
        ("eq", "text", "", "text"),
        ("lte", "boolean", "true", "boolean"),
    ],
)
def test_an_ordering_comparison_reads_numbers_as_numbers(op, kind, value, after):
    tree = rb.Group("all", [rb.Condition("event.a", op, kind, value)])
    rb.operator_changed(tree, "0.0")
    assert tree.members[0].type == after


def test_the_operator_labels_cover_exactly_the_engines_operators():
    assert set(rb.OPERATORS) == set(rules.OPERATORS)
    assert set(rb.KINDS) == {"all", "any", "not"}


def test_the_editor_edits_then_saves_and_switches_to_json_and_back():
    editor = RuleEditor("n-x-rule")
    editor.load({"field": "customer.traits.tier", "op": "eq", "value": "vip"})
    editor.apply("add-group", "0")
    assert editor.focus == "n-x-rule-0-1-0-field"
    editor.apply("add-condition", "0.1")
    assert editor.focus == "n-x-rule-0-1-1-field"
    editor.apply("remove", "0.1.1")
    assert editor.focus == "n-x-rule-0-1-add"
    assert editor.invalid  # the new condition names no field yet
    editor.root.members[1].members[0].field = "event.properties.total"
    editor.root.members[1].members[0].op = "gt"
    editor.apply("op", "0.1.0")
    editor.root.members[1].members[0].value = "100"
    editor.apply("refresh", "")
    wanted = {
        "all": [
            {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
            {"all": [{"field": "event.properties.total", "op": "gt", "value": 100}]},
        ]
    }
    assert not editor.invalid and editor.rule == wanted
    editor.apply("to-json", "")
    assert editor.mode == "json" and editor.focus == "n-x-rule-json"
    editor.text = editor.text.replace('"gt"', '"gte"')
    editor.apply("to-builder", "")
    assert editor.mode == "builder"
    assert editor.rule["all"][1]["all"][0]["op"] == "gte"
    editor.mode, editor.text = "json", '{"field": "a", "op": "nearly"'
    editor.apply("to-builder", "")
    assert editor.mode == "json" and editor.errors[0].startswith("This is not JSON")
    editor.text = '{"field": "event.a", "op": "nearly", "value": 1}'
    editor.apply("to-builder", "")
    assert editor.errors == [
        "The builder cannot show this rule: “nearly” is not a comparison the builder "
        "knows."
    ]
    assert editor.problems() == [
        "“nearly” is not a comparison; choose one from the list (in JSON: eq, ne, gt, "
        "gte, lt, lte, in, not_in, contains, starts_with, exists, not_exists)"
    ]


def test_an_optional_rule_starts_and_ends_empty():
    editor = RuleEditor("w", optional=True)
    editor.load(None)
    assert editor.root is None and editor.rule is None
    editor.apply("start", "")
    assert editor.focus == "w-0-0-field" and editor.root is not None
    editor.apply("remove", "0.0")
    assert editor.root is None and editor.focus == "w-start"
    editor.apply("start", "")
    editor.apply("clear", "")
    assert editor.root is None and editor.rule is None
    required = RuleEditor("r")
    required.load({"field": "event.a", "op": "exists"})
    required.apply("remove", "0.0")
    assert required.root is not None and len(required.root.members) == 1
