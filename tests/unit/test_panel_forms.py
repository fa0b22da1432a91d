"""The panel's list editors (switch cases, message fields, exit events) and journey settings:
each reads what the page posts and writes the engine's config back unchanged."""

import pytest
from werkzeug.datastructures import MultiDict

from engine.journeys.starters import CATALOGUE, document
from webapp.designer import node_forms
from webapp.designer.editors import apply_action
from webapp.designer.forms import JourneySettingsForm


def _node(starter: str, node_id: str) -> dict:
    return next(n for n in document(starter)["nodes"] if n["id"] == node_id)


def _posted(form, extra=()) -> MultiDict:
    """What the browser posts for a form as rendered: plain fields plus the editors' names."""
    pairs = []
    for field in form:
        if hasattr(field, "pairs"):
            pairs += field.pairs()
        elif hasattr(field, "editor"):
            pairs += field.editor.pairs()
        elif field.short_name not in {"csrf_token"} and field.data is not None:
            values = field.data if isinstance(field.data, list) else [field.data]
            pairs += [(field.name, str(value)) for value in values]
    return MultiDict([*pairs, *extra])


def test_switch_cases_survive_a_trip_through_the_page(form_app):
    config = _node("vip_routing", "route")["config"]
    with form_app.test_request_context():
        form = node_forms.SwitchForm(meta={"csrf": False}, prefix="n-route")
        form.load(config)
        again = node_forms.SwitchForm(
            formdata=_posted(form), meta={"csrf": False}, prefix="n-route"
        )
        assert again.validate(), again.errors
        assert again.dump() == config


def test_cases_are_added_and_removed_and_their_rules_renumbered(form_app):
    config = _node("vip_routing", "route")["config"]
    with form_app.test_request_context():
        form = node_forms.SwitchForm(meta={"csrf": False}, prefix="n-route")
        form.load(config)
        assert apply_action(form, "n-route-cases|add|") == "n-route-cases-2-port"
        assert [row.editor.name for row in form.cases.rows] == [
            "n-route-cases.0.rule",
            "n-route-cases.1.rule",
            "n-route-cases.2.rule",
        ]
        assert apply_action(form, "n-route-cases|remove|0") == "n-route-cases-add"
        assert form.cases.rows[0].values["port"] == "urgent"
        assert form.cases.rows[0].editor.name == "n-route-cases.0.rule"
        # an edit inside the second case's rule reaches that rule
        focus = apply_action(form, "n-route-cases.1.rule|add-condition|0")
        assert focus == "n-route-cases-1-rule-0-1-field"
        assert len(form.cases.rows[1].editor.root.members) == 2


def test_case_ports_must_be_named_and_differ(form_app):
    with form_app.test_request_context():
        posted = MultiDict(
            [
                ("cases.present", "1"),
                ("cases.0.port", "vip"),
                ("cases.0.rule.mode", "json"),
                ("cases.0.rule.json", '{"field": "event.a", "op": "exists"}'),
                ("cases.1.port", "vip"),
                ("cases.1.rule.mode", "json"),
                ("cases.1.rule.json", '{"field": "event.b", "op": "exists"}'),
                ("cases.2.port", " "),
                ("cases.2.rule.mode", "json"),
                ("cases.2.rule.json", ""),
            ]
        )
        form = node_forms.SwitchForm(formdata=posted, meta={"csrf": False})
        assert not form.validate()
        rows = form.cases.rows
        assert rows[1].errors == {"port": ["Two cases take the path 'vip'"]}
        assert rows[2].errors == {"port": ["Name the path this case takes, e.g. vip"]}
        assert rows[2].editor.errors == ["Add a condition."]


def test_message_fields_keep_their_text_and_order(form_app):
    with form_app.test_request_context():
        posted = MultiDict(
            [
                ("message.present", "1"),
                ("message.0.name", " subject "),
                ("message.0.template", "Hi {{ customer.traits.first_name }}"),
                ("message.1.name", "body"),
                ("message.1.template", "Line one\r\n  line two  "),
                ("message.2.name", ""),
                ("message.2.template", ""),
                ("channel", "email"),
            ]
        )
        form = node_forms.SendForm(formdata=posted, meta={"csrf": False})
        form.set_channels(["email"])
        assert form.validate(), form.errors
        assert form.dump() == {
            "channel": "email",
            "message": {
                "subject": "Hi {{ customer.traits.first_name }}",
                "body": "Line one\n  line two  ",
            },
        }


def test_message_fields_need_distinct_names(form_app):
    with form_app.test_request_context():
        posted = MultiDict(
            [
                ("message.present", "1"),
                ("message.0.name", "text"),
                ("message.0.template", "a"),
                ("message.1.name", "text"),
                ("message.1.template", "b"),
                ("message.2.name", ""),
                ("message.2.template", "c"),
                ("channel", "email"),
            ]
        )
        form = node_forms.SendForm(formdata=posted, meta={"csrf": False})
        form.set_channels(["email"])
        assert not form.validate()
        assert [row.errors for row in form.message.rows] == [
            {},
            {"name": ["Two fields are called 'text'"]},
            {"name": ["Name this field, e.g. subject or text"]},
        ]


@pytest.mark.parametrize("starter", [s.key for s in CATALOGUE])
def test_journey_settings_survive_a_trip_through_the_page(form_app, starter):
    doc = document(starter)
    with form_app.test_request_context():
        form = JourneySettingsForm(formdata=None, meta={"csrf": False}, prefix="j")
        form.load(doc)
        again = JourneySettingsForm(
            formdata=_posted(form), meta={"csrf": False}, prefix="j"
        )
        assert again.validate(), again.errors
        assert again.dump_into(doc) == doc


def test_journey_settings_write_goal_entry_and_exits(form_app):
    doc = document("onboarding")
    with form_app.test_request_context():
        form = JourneySettingsForm(formdata=None, meta={"csrf": False}, prefix="j")
        form.load(doc)
        apply_action(form, "j-exit_on|add|")
        apply_action(form, "j-exit_on.1.where|start|")
        apply_action(form, "j-goal_where|start|")
        posted = _posted(form)
        posted.setlist("j-name", ["Onboarding, take two"])
        posted.setlist("j-reentry", ["always"])
        posted.setlist("j-max_entries", ["2"])
        posted.setlist("j-goal_amount", ["3"])
        posted.setlist("j-goal_unit", ["D"])
        posted.setlist("j-goal_where.0.0.field", ["event.properties.size"])
        posted.setlist("j-goal_where.0.0.op", ["gte"])
        posted.setlist("j-goal_where.0.0.type", ["number"])
        posted.setlist("j-goal_where.0.0.value", ["2"])
        posted.setlist("j-exit_on.1.event", ["account_closed"])
        posted.setlist("j-exit_on.1.where.0.0.field", ["event.properties.reason"])
        posted.setlist("j-exit_on.1.where.0.0.op", ["ne"])
        posted.setlist("j-exit_on.1.where.0.0.value", ["test"])
        again = JourneySettingsForm(formdata=posted, meta={"csrf": False}, prefix="j")
        assert again.validate(), again.errors
        saved = again.dump_into(doc)
        assert saved["name"] == "Onboarding, take two"
        assert saved["entry"] == {"reentry": "always", "max_entries": 2}
        assert saved["goal"] == {
            "event": "first_project_created",
            "within": "P3D",
            "where": {"field": "event.properties.size", "op": "gte", "value": 2},
        }
        assert saved["exit_on"] == [
            {"event": "unsubscribed"},
            {
                "event": "account_closed",
                "where": {
                    "field": "event.properties.reason",
                    "op": "ne",
                    "value": "test",
                },
            },
        ]
        posted.setlist("j-goal_event", [""])
        posted.setlist("j-exit_on.1.event", [""])
        blank = JourneySettingsForm(formdata=posted, meta={"csrf": False}, prefix="j")
        assert not blank.validate()
        assert blank.exit_on.rows[1].errors == {
            "event": ["Name the event that ends the journey"]
        }
        assert "goal" not in blank.dump_into(doc)
