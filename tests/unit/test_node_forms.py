"""Every engine node type has a side-panel form that reads and writes its config."""

import pytest

from engine.journeys.starters import CATALOGUE, document
from engine.language import nodes
from webapp.designer import node_forms


def test_every_node_type_has_a_form_and_no_form_is_for_an_unknown_type():
    assert set(node_forms.FORMS) == set(nodes.names())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT10M", (10, "M")),
        ("PT2H", (2, "H")),
        ("P1D", (1, "D")),
        ("P14D", (2, "W")),
        ("PT90M", (90, "M")),
        ("P1M", None),
        ("nonsense", None),
    ],
)
def test_durations_are_shown_in_one_human_unit(text, expected):
    assert node_forms.from_iso(text) == expected
    if expected:
        assert node_forms.from_iso(node_forms.to_iso(*expected)) == expected


def test_every_starter_node_survives_a_trip_through_its_form(form_app):
    """Load each step of every starter into its form and dump it back unchanged."""
    with form_app.test_request_context():
        for starter in CATALOGUE:
            for node in document(starter.key)["nodes"]:
                form = node_forms.form_for(node["type"])(meta={"csrf": False})
                if isinstance(form, node_forms._Channels):
                    form.set_channels(["app", "email", "sms", "support-desk", "web"])
                form.load(node["config"])
                assert form.dump() == (node["config"] or {}), (starter.key, node["id"])


def _builder(condition: dict[str, str]) -> dict[str, str]:
    """What the page posts for a condition step's rule of one condition."""
    posted = {"rule.mode": "builder", "rule.0.kind": "all", "rule.0.bare": "1"}
    posted.update({f"rule.0.0.{key}": value for key, value in condition.items()})
    return posted


@pytest.mark.parametrize(
    ("posted", "rule"),
    [
        (
            _builder(
                {
                    "field": "event.properties.cart_value",
                    "op": "gte",
                    "type": "number",
                    "value": "50",
                }
            ),
            {"field": "event.properties.cart_value", "op": "gte", "value": 50},
        ),
        (
            _builder(
                {
                    "field": "customer.traits.tier",
                    "op": "in",
                    "type": "list",
                    "value": "vip\r\ngold",
                }
            ),
            {"field": "customer.traits.tier", "op": "in", "value": ["vip", "gold"]},
        ),
        (
            _builder(
                {
                    "field": "customer.traits.tier",
                    "op": "eq",
                    "type": "text",
                    "value": "vip",
                }
            ),
            {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
        ),
        (
            _builder({"field": "customer.email", "op": "exists", "value": "ignored"}),
            {"field": "customer.email", "op": "exists"},
        ),
        (
            {
                "rule.mode": "json",
                "rule.json": '{"any": [{"field": "a", "op": "exists"}]}',
            },
            {"any": [{"field": "a", "op": "exists"}]},
        ),
    ],
)
def test_the_condition_form_builds_a_rule_from_plain_fields(form_app, posted, rule):
    from werkzeug.datastructures import MultiDict

    with form_app.test_request_context():
        form = node_forms.ConditionForm(
            formdata=MultiDict(posted), meta={"csrf": False}
        )
        assert form.validate(), form.errors
        assert form.dump() == {"rule": rule}


def test_the_condition_form_asks_for_a_field(form_app):
    from werkzeug.datastructures import MultiDict

    with form_app.test_request_context():
        form = node_forms.ConditionForm(
            formdata=MultiDict(_builder({"op": "eq", "type": "text"})),
            meta={"csrf": False},
        )
        assert not form.validate()
        assert form.rule.errors == ["Fix the conditions marked below."]
        condition = form.rule.editor.root.members[0]
        assert condition.errors == [
            "Name the field to compare, e.g. customer.traits.tier"
        ]


@pytest.mark.parametrize(
    ("offset", "shown"),
    [("-P3D", (3, "D", "-")), ("PT2H", (2, "H", "")), (None, (None, "D", "-"))],
)
def test_a_date_offset_is_a_number_a_unit_and_before_or_after(form_app, offset, shown):
    config = {"trait": "renewal_date", **({"offset": offset} if offset else {})}
    with form_app.test_request_context():
        form = node_forms.WaitUntilForm(meta={"csrf": False})
        form.load(config)
        assert (
            form.offset_amount.data,
            form.offset_unit.data,
            form.offset_side.data,
        ) == shown
        assert form.dump() == config
        assert "ISO" not in str(form.offset_amount.label)
