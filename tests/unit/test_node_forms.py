"""Every engine node type has a side-panel form that reads and writes its config."""

import pytest

from engine import nodes
from engine.starters import CATALOGUE, document
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


def test_every_starter_node_survives_a_trip_through_its_form(app):
    """Load each step of every starter into its form and dump it back unchanged."""
    with app.test_request_context():
        for starter in CATALOGUE:
            for node in document(starter.key)["nodes"]:
                form = node_forms.form_for(node["type"])(meta={"csrf": False})
                if isinstance(form, node_forms._Channels):
                    form.set_channels(["app", "email", "sms", "support-desk", "web"])
                form.load(node["config"])
                assert form.dump() == (node["config"] or {}), (starter.key, node["id"])


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        (
            {"field": "event.properties.cart_value", "op": "gte", "value": "50"},
            {"field": "event.properties.cart_value", "op": "gte", "value": 50},
        ),
        (
            {"field": "customer.traits.tier", "op": "in", "value": '["vip", "gold"]'},
            {"field": "customer.traits.tier", "op": "in", "value": ["vip", "gold"]},
        ),
        (
            {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
            {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
        ),
        (
            {"field": "customer.email", "op": "exists", "value": "ignored"},
            {"field": "customer.email", "op": "exists"},
        ),
        (
            {"rule": '{"any": [{"field": "a", "op": "exists"}]}', "field": ""},
            {"any": [{"field": "a", "op": "exists"}]},
        ),
    ],
)
def test_the_condition_form_builds_a_rule_from_plain_fields(app, fields, rule):
    from werkzeug.datastructures import MultiDict

    with app.test_request_context():
        form = node_forms.ConditionForm(
            formdata=MultiDict(fields), meta={"csrf": False}
        )
        assert form.validate(), form.errors
        assert form.dump() == {"rule": rule}


def test_the_condition_form_asks_for_a_field_or_a_rule(app):
    from werkzeug.datastructures import MultiDict

    with app.test_request_context():
        form = node_forms.ConditionForm(
            formdata=MultiDict({"op": "eq"}), meta={"csrf": False}
        )
        assert not form.validate()
        assert form.field.errors == [
            "name the field to compare, or write a whole rule below"
        ]
