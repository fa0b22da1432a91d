"""Template problems name the line they are on, in words a marketer can act on."""

import pytest

from engine.language import templates


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        (
            "Hi\n  {{ customer.traits.first_name }",
            2,
            "expected “}}”, found end of file",
        ),
        ("a\n{{ 1 | nofilter }}", 2, "unknown filter “nofilter”"),
        (
            "a\nb\n{% if x %}y",
            3,
            "the {% if %} on line 3 is never closed: add {% endif %}",
        ),
        (
            "{% for a in b %}\n{% if x %}{% endif %}",
            1,
            "the {% for %} on line 1 is never closed: add {% endfor %}",
        ),
    ],
)
def test_a_broken_template_says_what_and_where(source, line, words):
    with pytest.raises(templates.TemplateError) as raised:
        templates.render(source, {})
    assert raised.value.line == line
    assert words in str(raised.value)


def test_a_good_template_renders_with_the_scope():
    scope = {"customer": {"traits": {"first_name": "Ada"}}}
    assert templates.render("Hi {{ customer.traits.first_name }}", scope) == "Hi Ada"


@pytest.mark.parametrize(
    ("source", "unknown"),
    [
        ("Hi {{ customer.first_name }}", [("customer.first_name", "customer.traits.first_name")]),
        ("Hi {{ customer.traits.first_name | default: 'you' }}", []),
        ("{{ first_name }}", [("first_name", "customer.traits.first_name")]),
        ("{{ trigger.cart_value }} {{ event.properties.items }}", [("trigger.cart_value", "trigger.properties.cart_value")]),
        ("{% for item in event.properties.items %}{{ item.name }}{% endfor %}", []),
        ("{{ customer.email }} {{ customer.consent.sms }} {{ context.anything }}", []),
        ("no template at all", []),
        ("{{ broken", []),
    ],
)  # fmt: skip
def test_names_that_are_always_empty_are_found_with_what_was_meant(source, unknown):
    assert templates.unknown_names(source) == unknown
