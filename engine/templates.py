"""Message templates: Liquid (python-liquid) with limits on loops, output and nesting."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from liquid import BoundTemplate, Environment
from liquid.exceptions import LiquidError

MAX_TEMPLATE_LENGTH = 20_000


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered, with a sentence saying why.

    `line` is the template's line (from 1) the problem is on, when the parser knows it.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class _Sandbox(Environment):
    """No file system (include/render find nothing), bounded loops, output and nesting."""

    loop_iteration_limit = 1_000
    output_stream_limit = 64 * 1024
    context_depth_limit = 30
    local_namespace_limit = 64 * 1024


_ENVIRONMENT = _Sandbox()


def _sentence(error: LiquidError) -> str:
    first = str(error).splitlines()[0].strip()
    # The parser quotes what it expected the Python way ('}}'): quote it as text does.
    return re.sub(r"'([^']*)'", r"“\1”", first) or type(error).__name__


_UNCLOSED = re.compile(r"expected tag end(\w+)")


def _unclosed(source: str, sentence: str) -> tuple[str, int] | None:
    """For a block left open (the parser knows no line then): which one, and its line."""
    found = _UNCLOSED.search(sentence)
    if found is None:
        return None
    tag = found.group(1)
    stack: list[int] = []
    for match in re.finditer(r"\{%-?\s*(end)?" + re.escape(tag) + r"\b", source):
        if match.group(1):
            if stack:
                stack.pop()
        else:
            stack.append(match.start())
    if not stack:
        return None
    line = source.count("\n", 0, stack[-1]) + 1
    return (
        f"the {{% {tag} %}} on line {line} is never closed: add {{% end{tag} %}}",
        line,
    )


def _line(error: LiquidError) -> int | None:
    try:
        found = error.context()
    except (AttributeError, ValueError):
        return None
    return found[0] if found else None


@lru_cache(maxsize=2048)
def _compile(source: str) -> BoundTemplate:
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(
            f"the template is longer than {MAX_TEMPLATE_LENGTH} characters"
        )
    try:
        return _ENVIRONMENT.from_string(source)
    except LiquidError as error:
        line = _line(error)
        sentence = _sentence(error)
        if line is None and (unclosed := _unclosed(source, sentence)) is not None:
            sentence, line = unclosed
        raise TemplateError(f"the template does not parse: {sentence}", line) from None


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
            f"the template cannot be rendered: {_sentence(error)}", _line(error)
        ) from None


def render_fields(
    fields: Mapping[str, Any], scope: Mapping[str, Any]
) -> dict[str, Any]:
    """Render every string value of `fields`; other values are kept as they are."""
    return {
        key: render(value, scope) if isinstance(value, str) else value
        for key, value in fields.items()
    }


_OUTPUT = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_TAG = re.compile(r"\{%.*?%\}", re.DOTALL)
_PATH = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*|\[\d+\])*$")


def _placeholder(found: re.Match[str]) -> str:
    variable = found.group(1).split("|", 1)[0].strip()
    if _PATH.match(variable):
        return "{{ " + variable.split(".")[-1] + " }}"
    return "{{ … }}"


def gist(source: object, limit: int = 40) -> str:
    """A template as a short line: `Hi {{ customer.traits.first_name }}, …` reads
    `Hi {{ first_name }}, …`, tags are left out and the text is cut near `limit` characters."""
    if not isinstance(source, str):
        return ""
    text = _TAG.sub(" ", _OUTPUT.sub(_placeholder, source))
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"


# What a template can name (see `ingest.event_scope` and `customers.scope_of`): a name outside
# these is empty when the message is sent, which Liquid does without a word.
ROOTS = ("trigger", "event", "customer", "context")
EVENT_NAMES = ("id", "type", "channel", "properties", "traits", "occurred_at")
CUSTOMER_NAMES = (
    "id",
    "profile_id",
    "email",
    "phone",
    "anonymous_id",
    "traits",
    "consent",
)


def unknown_names(source: object) -> list[tuple[str, str]]:
    """Each name `source` uses that cannot hold a value, with the one it probably meant:
    `customer.first_name` -> `customer.traits.first_name`. An unreadable template has none
    here (`check` says what is wrong with it)."""
    if not isinstance(source, str) or "{" not in source:
        return []
    try:
        analysis = _compile(source).analyze()
    except (TemplateError, LiquidError):
        return []
    found: dict[str, str] = {}
    for name, uses in analysis.globals.items():
        for use in uses:
            parts = [str(part) for part in use.segments]
            path = ".".join(parts)
            if name not in ROOTS:
                found[path] = f"customer.traits.{path}"
            elif (
                name == "customer" and len(parts) > 1 and parts[1] not in CUSTOMER_NAMES
            ):
                found[path] = "customer.traits." + ".".join(parts[1:])
            elif (
                name in ("event", "trigger")
                and len(parts) > 1
                and parts[1] not in EVENT_NAMES
            ):
                found[path] = f"{name}.properties." + ".".join(parts[1:])
    return sorted(found.items())


def _lookup(path: str, scope: Mapping[str, Any]) -> Any:
    value: Any = scope
    for part in re.sub(r"\[(\d+)\]", r".\1", path).split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def empty_names(fields: Mapping[str, Any], scope: Mapping[str, Any]) -> list[str]:
    """The names the templates of `fields` print that are empty for `scope` (missing, null
    or blank text): `Hi {{ customer.traits.first_name }}` for a customer without one
    gives `customer.traits.first_name`. A name printed with a `default` filter is not."""
    found: dict[str, None] = {}
    for source in fields.values():
        if not isinstance(source, str) or "{{" not in source:
            continue
        for output in _OUTPUT.finditer(source):
            variable, _bar, filters = output.group(1).partition("|")
            variable = variable.strip()
            if not _PATH.match(variable) or "default" in filters:
                continue
            value = _lookup(variable, scope)
            if value is None or (isinstance(value, str) and not value.strip()):
                found[variable] = None
    return list(found)
