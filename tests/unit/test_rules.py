import pytest

from engine.language import rules

SCOPE = {
    "event": {
        "type": "cart_abandoned",
        "properties": {
            "cart_value": 120.5,
            "items": 3,
            "skus": ["A", "B"],
            "coupon": None,
            "count": "7",
        },
    },
    "customer": {
        "id": "c-1",
        "traits": {
            "tier": "vip",
            "first_name": "Ada",
            "renewal": "2026-12-01",
            "vip": True,
        },
    },
    "trigger": {"type": "cart_abandoned", "properties": {"cart_value": 120.5}},
    "context": {"attempt": 2},
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("event.properties.cart_value", "eq", 120.5, True),
        (
            "event.properties.cart_value",
            "eq",
            "120.5",
            True,
        ),  # numeric text meets a number
        ("customer.traits.tier", "eq", "VIP", False),  # text is exact
        ("customer.traits.vip", "eq", 1, False),  # booleans are not numbers
        ("customer.traits.vip", "eq", True, True),
        ("customer.traits.tier", "ne", "standard", True),
        ("customer.traits.tier", "ne", "vip", False),
        ("event.properties.cart_value", "gt", 100, True),
        ("event.properties.cart_value", "gt", 120.5, False),
        ("event.properties.cart_value", "gte", 120.5, True),
        ("event.properties.items", "lt", 3, False),
        ("event.properties.items", "lte", 3, True),
        ("event.properties.count", "gt", 5, True),  # "7" compared as a number
        ("customer.traits.first_name", "gt", 5, False),  # not comparable: false
        (
            "customer.traits.renewal",
            "gt",
            "2026-11-30T23:00:00Z",
            True,
        ),  # dates as instants
        ("customer.traits.renewal", "lt", "2026-12-01T00:00:01+00:00", True),
        ("customer.traits.first_name", "lt", "Bob", True),  # other text: lexical
        ("customer.traits.tier", "in", ["vip", "gold"], True),
        ("customer.traits.tier", "in", ["gold"], False),
        ("event.properties.items", "in", [1, 2, "3"], True),
        ("customer.traits.tier", "not_in", ["gold"], True),
        ("customer.traits.tier", "not_in", ["vip"], False),
        ("customer.traits.first_name", "contains", "da", True),
        ("event.properties.skus", "contains", "B", True),
        ("event.properties.skus", "contains", "C", False),
        ("event.properties.items", "contains", 3, False),
        ("customer.traits.first_name", "starts_with", "Ad", True),
        ("customer.traits.first_name", "starts_with", "da", False),
        ("event.properties.items", "starts_with", "3", False),
        ("customer.traits.tier", "exists", None, True),
        ("event.properties.coupon", "exists", None, False),  # null does not exist
        ("event.properties.coupon", "not_exists", None, True),
        ("customer.traits.tier", "not_exists", None, False),
        ("context.attempt", "eq", 2, True),
        ("trigger.properties.cart_value", "gte", 50, True),
        ("event.properties.skus.1", "eq", "B", True),  # list index in a path
    ],
)
def test_each_operator(field, op, value, expected):
    rule = (
        {"field": field, "op": op}
        if op in {"exists", "not_exists"}
        else {"field": field, "op": op, "value": value}
    )
    assert rules.check(rule) == []
    assert rules.evaluate(rule, SCOPE).matched is expected


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("eq", False),
        ("gt", False),
        ("in", False),
        ("contains", False),
        ("starts_with", False),
        ("ne", True),
        ("not_in", True),
        ("exists", False),
        ("not_exists", True),
    ],
)
def test_a_missing_field_makes_comparisons_false_except_negations(op, expected):
    rule = {"field": "customer.traits.nothing", "op": op}
    if op not in {"exists", "not_exists"}:
        rule["value"] = ["x"] if op in {"in", "not_in"} else "x"
    verdict = rules.evaluate(rule, SCOPE)
    assert verdict.matched is expected
    assert "(it is not set)" in verdict.reason


def test_groups_combine_and_explain():
    rule = {
        "all": [
            {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
            {
                "any": [
                    {"field": "event.properties.items", "op": "gt", "value": 10},
                    {
                        "not": {
                            "field": "event.properties.cart_value",
                            "op": "lt",
                            "value": 100,
                        }
                    },
                ]
            },
        ]
    }
    assert rules.check(rule) == []
    verdict = rules.evaluate(rule, SCOPE)
    assert verdict.matched
    assert "tier is vip: yes (it is vip)" in verdict.reason
    failing = {
        "all": [rule, {"field": "customer.traits.tier", "op": "eq", "value": "gold"}]
    }
    verdict = rules.evaluate(failing, SCOPE)
    assert not verdict.matched and "tier is gold: no (it is vip)" in verdict.reason


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("tier = vip", "a condition needs a field, a comparison and a value"),
        (
            {"field": "traits.tier", "op": "eq", "value": 1},
            "must start with trigger, event, customer or context",
        ),
        (
            {"field": "customer.traits.tier", "op": "equals", "value": 1},
            "“equals” is not a comparison",
        ),
        ({"field": "customer.traits.tier", "op": "eq"}, "give the value to compare"),
        (
            {"field": "customer.traits.tier", "op": "exists", "value": 1},
            "“is set” compares with no value",
        ),
        (
            {"field": "customer.traits.tier", "op": "in", "value": "vip"},
            "give a list of values",
        ),
        ({"all": []}, "add at least one condition to this group"),
        (
            {"all": [{"field": "x.y", "op": "eq", "value": 1}]},
            "the field “x.y”",
        ),
        ({"any": [], "all": []}, "all, any or none of its conditions"),
        ({"field": "customer..tier", "op": "eq", "value": 1}, "must start with"),
        (
            {"field": "customer.tier", "op": "eq", "value": 1, "extra": 2},
            "remove extra",
        ),
    ],
)
def test_malformed_rules_are_named(rule, message):
    problems = rules.check(rule)
    assert any(message in problem for problem in problems), problems


def test_deep_nesting_is_refused_not_a_crash():
    rule: dict = {"field": "customer.id", "op": "exists"}
    for _ in range(50):
        rule = {"not": rule}
    assert any("nested more than" in p for p in rules.check(rule))
