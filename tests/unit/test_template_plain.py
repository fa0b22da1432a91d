"""A template of text and plain names renders without Liquid, exactly as Liquid would."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.language import templates

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "size"]), st.integers(), max_size=2),
)
TEXT = st.text(alphabet=st.sampled_from("ab {}%-\n\r|é"), max_size=8)
NAMES = st.sampled_from(
    [
        "customer.traits.first_name",
        "customer.traits.size",
        "event.properties.total",
        "event.properties.missing.deeper",
        "trigger.type",
        "context.count",
    ]
)


def liquid(source, scope):
    return templates._compile(source).render(**scope)


@settings(max_examples=500)
@given(
    pieces=st.lists(st.tuples(TEXT, NAMES), max_size=3),
    tail=TEXT,
    first_name=VALUES,
    total=VALUES,
    count=VALUES,
)
def test_a_plain_template_renders_as_liquid_renders_it(
    pieces, tail, first_name, total, count
):
    source = "".join(f"{text}{{{{ {name} }}}}" for text, name in pieces) + tail
    scope = {
        "customer": {"id": "c1", "traits": {"first_name": first_name}},
        "event": {"type": "order_completed", "properties": {"total": total}},
        "trigger": {"type": "order_completed"},
        "context": {"count": count},
    }
    try:
        expected = liquid(source, scope)
    except Exception as error:  # noqa: BLE001 - the same template must fail the same way
        try:
            templates.render(source, scope)
        except templates.TemplateError:
            return
        raise AssertionError(
            f"Liquid refused {source!r} ({error}); render did not"
        ) from None
    assert templates.render(source, scope) == expected


def test_only_plain_templates_skip_liquid():
    assert templates._plain("Thanks {{ customer.traits.first_name }}!") == (
        "Thanks ",
        ("customer", "traits", "first_name"),
        "!",
    )
    for source in [
        "{{ customer.traits.first_name | upcase }}",
        "{{- customer.traits.first_name }}",
        "{% if x %}y{% endif %}",
        "{{ customer.traits[0] }}",
        "{{ first_name }}",
        "broken {{ customer.traits.first_name",
    ]:
        assert templates._plain(source) is None, source


def test_a_plain_name_that_liquid_would_render_otherwise_goes_to_liquid():
    source = "{{ customer.traits.vip }}/{{ customer.traits.tags }}/{{ customer.id }}"
    scope = {"customer": {"id": 7, "traits": {"vip": True, "tags": ["a", "b"]}}}
    assert templates._render_plain(templates._plain(source), scope) is None
    assert templates.render(source, scope) == liquid(source, scope)
    assert templates.render(source, scope).startswith("true/")


def test_a_plain_template_past_the_output_limit_in_bytes_is_refused_as_liquid_refuses_it():
    source = "Hi {{ customer.traits.note }}"
    for note in [
        "é" * 40_000,
        "字" * 22_000,
    ]:  # fewer characters than the limit, more bytes
        assert len("Hi " + note) <= templates.MAX_TEXT
        scope = {"customer": {"traits": {"note": note}}}
        try:
            liquid(source, scope)
        except Exception:  # noqa: BLE001
            pass
        else:
            raise AssertionError("Liquid rendered it")
        with pytest.raises(templates.TemplateLimitError):
            templates.render(source, scope)
    fits = {"customer": {"traits": {"note": "é" * 30_000}}}
    assert templates.render(source, fits) == liquid(source, fits)
