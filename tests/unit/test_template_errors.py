"""Template problems name the line they are on, in words a marketer can act on."""

import pytest

from engine import templates


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        (
            "Hi\n  {{ customer.traits.first_name }",
            2,
            "expected '}}', found end of file",
        ),
        ("a\n{{ 1 | nofilter }}", 2, "unknown filter 'nofilter'"),
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
