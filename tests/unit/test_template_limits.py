"""A template cannot take unbounded memory or time: ranges, growing text and total work
are bounded, and the refusal names the step in words a marketer can act on."""

import re

import pytest

from engine.language import graph, nodes, templates
from engine.language.nodes import RunContext

pytestmark = pytest.mark.security

WORK = "too much work|too long"  # whichever budget a busy machine reaches first
REPLACE_GROWTH = "{{ 'xxxxxxxxxx'" + " | replace: 'x', 'xxxxxxxxxx'" * 7 + " | size }}"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{{ (1..10000000) | join: '' | size }}", "a list or range of more than"),
        ("{{ (1..1000000000000) | size }}", "a list or range of more than"),
        ("{{ (1..3000000) | reverse | size }}", "a list or range of more than"),
        (REPLACE_GROWTH, "the message grew too large"),
        (
            "{% assign s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}"
            + "{% assign s = s | replace: 'x', s %}" * 3,
            "the message grew too large",
        ),
        ("{{ (1..1000) | join: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | size }}", "the message grew too large"),
        ("{{ 99999999999999" + " | times: 99999999999999" * 300 + " }}", "a number grew too large"),
        ("{% for i in (1..999) %}{% if true %}{% endif %}{% endfor %}" * 300, WORK),
        ("{% for i in (1..999) %}{% assign j = i | plus: 1 | minus: 1 %}{% endfor %}" * 200, WORK),
        ("{% for i in (1..5000) %}x{% endfor %}", "the loops would run more than 1,000 times"),
    ],
)  # fmt: skip
def test_a_template_too_big_to_render_is_refused_before_it_grows(source, words):
    with pytest.raises(templates.TemplateLimitError, match=words):
        templates.render(source, {})
    assert re.search(words, templates.check(source) or "")


def test_the_refusal_names_the_step_in_plain_words():
    message = templates.check(REPLACE_GROWTH, step="Send email")
    assert message == (
        "Step 'Send email': the message grew too large (over 65,536 characters);"
        " shorten the loop or the text"
    )


def test_small_ranges_loops_and_filters_still_render():
    source = (
        "{% for i in (1..5) %}{{ i | times: 2 }},{% endfor %}"
        "{{ (1..10) | join: '-' }} {{ 'abc' | replace: 'b', 'x' | upcase }}"
    )
    assert templates.render(source, {}) == "2,4,6,8,10,1-2-3-4-5-6-7-8-9-10 AXC"


def _document(message):
    return {
        "schema": graph.SCHEMA,
        "name": "Limits",
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
            {
                "id": "mail",
                "type": "send",
                "label": "Send email",
                "config": {"channel": "email", "message": {"body": message}},
            },
        ],
        "edges": [{"from": "start", "to": "mail"}],
    }


def test_validation_refuses_the_template_on_its_step():
    _, problems = graph.check(_document("{{ (1..10000000) | join: '' | size }}"))
    found = [p for p in problems if p.field == "config.message.body"]
    assert len(found) == 1 and found[0].node == "mail"
    assert found[0].message.startswith("Step 'Send email': a list or range of more")


def test_a_send_whose_data_makes_it_too_big_fails_naming_the_step():
    source = "{{ customer.traits.s | replace: 'x', customer.traits.s | size }}"
    scope = {"customer": {"traits": {"s": "x" * 1000}}}
    ctx = RunContext("mail", {"channel": "email", "message": {"body": source}}, scope, None, "c-1", step="Send email")  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(nodes.NodeError, match="^Step 'Send email': the message grew"):
        nodes.get("send").run(ctx)
