"""Message templates: Liquid (python-liquid) with limits on loops, output and nesting."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from liquid import BoundTemplate, Environment
from liquid.exceptions import LiquidError

MAX_TEMPLATE_LENGTH = 20_000


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered, with a sentence saying why."""


class _Sandbox(Environment):
    """No file system (include/render find nothing), bounded loops, output and nesting."""

    loop_iteration_limit = 1_000
    output_stream_limit = 64 * 1024
    context_depth_limit = 30
    local_namespace_limit = 64 * 1024


_ENVIRONMENT = _Sandbox()


def _sentence(error: LiquidError) -> str:
    first = str(error).splitlines()[0].strip()
    return first or type(error).__name__


@lru_cache(maxsize=2048)
def _compile(source: str) -> BoundTemplate:
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(
            f"the template is longer than {MAX_TEMPLATE_LENGTH} characters"
        )
    try:
        return _ENVIRONMENT.from_string(source)
    except LiquidError as error:
        raise TemplateError(
            f"the template does not parse: {_sentence(error)}"
        ) from None


def check(source: object) -> str | None:
    """None when `source` is a usable template, else a sentence saying what is wrong."""
    if not isinstance(source, str):
        return "a template must be text"
    try:
        _compile(source).render()
    except TemplateError as error:
        return str(error)
    except LiquidError as error:
        return f"the template cannot be rendered: {_sentence(error)}"
    return None


def render(source: str, scope: Mapping[str, Any]) -> str:
    """Render `source` with the names of `scope` (trigger, event, customer, context)."""
    try:
        return _compile(source).render(**scope)
    except LiquidError as error:
        raise TemplateError(
            f"the template cannot be rendered: {_sentence(error)}"
        ) from None


def render_fields(
    fields: Mapping[str, Any], scope: Mapping[str, Any]
) -> dict[str, Any]:
    """Render every string value of `fields`; other values are kept as they are."""
    return {
        key: render(value, scope) if isinstance(value, str) else value
        for key, value in fields.items()
    }
