"""Message templates: Liquid (python-liquid) with limits on loops, output and nesting."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence, Sized
from functools import lru_cache
from typing import Any

from liquid import BoundTemplate, Environment, RenderContext
from liquid.exceptions import (
    ContextDepthError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)
from liquid.token import Token

from engine.language.rules import list_index

MAX_TEMPLATE_LENGTH = 20_000
MAX_LOOP = 1_000
"""Loop iterations, counting nested loops multiplied."""
MAX_TEXT = 64 * 1024
"""Characters the output, or any value a filter takes or makes, may hold."""
MAX_ITEMS = 1_000
"""Items a list or range may hold when a filter takes or makes it (as many as a loop)."""
MAX_DIGITS_BITS = 10_000
"""Bits (about 3,000 digits) a whole number may grow to."""
MAX_STEPS = 100_000
"""Parts rendered plus filters applied (weighted by their input's size) in one render."""
TIME_BUDGET = 1.0
"""Seconds one render may take, whatever it does."""


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered, with a sentence saying why.

    `line` is the template's line (from 1) the problem is on, when the parser knows it.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class TemplateLimitError(TemplateError):
    """A template that would take too much memory or time to render."""


class _TooMuch(ResourceLimitError):
    """Raised inside a render; Liquid passes it on like its own limits."""


def _too_much(value: object, where: str) -> str | None:
    """What is too big about a value a filter takes or makes, or None."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return _TOO_LONG
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        if value.bit_length() > MAX_DIGITS_BITS:
            return "a number grew too large (over 3,000 digits); check the arithmetic"
    elif isinstance(value, Sized) and not isinstance(value, Mapping):
        if len(value) > MAX_ITEMS:
            return (
                f"a list or range of more than {MAX_ITEMS:,} items went into"
                f" '{where}'; use a smaller range or list"
            )
    return None


def _grown(name: str, left: object, args: tuple[Any, ...]) -> int:
    """How long the text of `replace` or `join` would be, before making it."""
    if name == "replace" and isinstance(left, str) and len(args) == 2:
        old, new = str(args[0]), str(args[1])
        return len(left) + left.count(old) * (len(new) - len(old))
    if name == "join" and isinstance(left, list | tuple | range):
        separator = str(args[0]) if args else " "
        return len(separator) * max(len(left) - 1, 0)
    return 0


def _weight(name: str, left: object) -> int:
    """Steps a filter costs: one, plus one per 100 characters or items it reads."""
    size = len(left) if isinstance(left, Sized) else 0
    if name == "uniq":
        return 1 + size * size // 1_000
    return 1 + size // 100


class _BoundedContext(RenderContext):
    """A render context that counts the work of one render and stops it past a budget.

    Liquid reads `disabled_tags` before it renders any part of a template, loops
    included, so that read is where every part rendered is counted; every filter goes
    through `filter`, where its input and output are measured.
    """

    __slots__ = ("_disabled", "_steps", "_deadline")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._steps = 0
        self._deadline = time.monotonic() + TIME_BUDGET
        super().__init__(*args, **kwargs)

    @property
    def disabled_tags(self) -> list[str]:
        self.spend(1)
        return self._disabled

    @disabled_tags.setter
    def disabled_tags(self, value: list[str]) -> None:
        self._disabled = value

    def spend(self, steps: int) -> None:
        """Count `steps` of work; raise once the render has done too much."""
        before = self._steps
        self._steps += steps
        if self._steps > MAX_STEPS:
            raise _TooMuch(
                f"the template takes too much work to render (over {MAX_STEPS:,}"
                " steps); shorten the loops",
                token=None,
            )
        if before // 64 != self._steps // 64 and time.monotonic() > self._deadline:
            raise _TooMuch(
                f"the template takes too long to render (over {TIME_BUDGET:g}"
                " second); shorten the loops",
                token=None,
            )

    def filter(self, name: str, token: Token | None) -> Callable[..., object]:  # noqa: A003
        apply = super().filter(name, token)

        def bounded(left: object, *args: Any, **kwargs: Any) -> object:
            for value in (left, *args, *kwargs.values()):
                if (problem := _too_much(value, name)) is not None:
                    raise _TooMuch(problem, token=token)
            self.spend(_weight(name, left))
            if _grown(name, left, args) > MAX_TEXT:
                raise _TooMuch(_TOO_LONG, token=token)
            result = apply(left, *args, **kwargs)
            if (problem := _too_much(result, name)) is not None:
                raise _TooMuch(problem, token=token)
            return result

        return bounded


class _BoundedTemplate(BoundTemplate):
    context_class = _BoundedContext


class _Sandbox(Environment):
    """No file system (include/render find nothing), bounded loops, output, nesting,
    values made by filters and work."""

    loop_iteration_limit = MAX_LOOP
    output_stream_limit = MAX_TEXT
    context_depth_limit = 30
    local_namespace_limit = 64 * 1024
    template_class = _BoundedTemplate


_ENVIRONMENT = _Sandbox()
_TOO_LONG = (
    f"the message grew too large (over {MAX_TEXT:,} characters);"
    " shorten the loop or the text"
)
_LIMITS: dict[type[LiquidError], str] = {
    OutputStreamLimitError: _TOO_LONG,
    LoopIterationLimitError: (
        f"the loops would run more than {MAX_LOOP:,} times; loop over fewer items"
    ),
    LocalNamespaceLimitError: (
        "the values kept with assign or capture grew too large; keep them shorter"
    ),
    ContextDepthError: "the template nests too deep; nest fewer blocks",
}


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


def _limit(error: ResourceLimitError, step: str | None) -> TemplateLimitError:
    if isinstance(error, _TooMuch):
        sentence = _sentence(error)
    else:
        sentence = next(
            (words for kind, words in _LIMITS.items() if isinstance(error, kind)),
            f"the template cannot be rendered: {_sentence(error)}",
        )
    if step:
        sentence = f"Step {step!r}: {sentence}"
    return TemplateLimitError(sentence, _line(error))


def check(source: object, step: str | None = None) -> str | None:
    """None when `source` is a usable template, else a sentence saying what is wrong
    (naming `step` when it is too big to render)."""
    if not isinstance(source, str):
        return "a template must be text"
    try:
        render(source, {}, step)
    except TemplateError as error:
        return str(error)
    return None


def render(source: str, scope: Mapping[str, Any], step: str | None = None) -> str:
    """Render `source` with the names of `scope` (trigger, event, customer, context).

    Raises TemplateLimitError, naming `step` when given, for a template that grows too
    large or takes too long; TemplateError for any other problem.
    """
    try:
        template = _compile(source)
        plain = _plain(source)
        if plain is not None and (text := _render_plain(plain, scope)) is not None:
            return text
        return template.render(**scope)
    except ResourceLimitError as error:
        raise _limit(error, step) from None
    except LiquidError as error:
        raise TemplateError(
            f"the template cannot be rendered: {_sentence(error)}", _line(error)
        ) from None


# A name printed as it is: a root of the scope and keys, no filter, no whitespace control.
_PLAIN_NAME = re.compile(
    r"\{\{ *((?:trigger|event|customer|context)(?:\.[A-Za-z_][A-Za-z0-9_]*)+) *\}\}"
)
_WIDEST = 2**63


@lru_cache(maxsize=2048)
def _plain(source: str) -> tuple[str | tuple[str, ...], ...] | None:
    """A template of text and plain names only (`Hi {{ customer.traits.first_name }}`) as
    its parts, text and the keys of each name in turn; None for any other template."""
    parts: list[str | tuple[str, ...]] = []
    start = 0
    for found in _PLAIN_NAME.finditer(source):
        parts.append(source[start : found.start()])
        parts.append(tuple(found.group(1).split(".")))
        start = found.end()
    parts.append(source[start:])
    if any(isinstance(p, str) and ("{{" in p or "{%" in p) for p in parts):
        return None
    return tuple(parts)


def _render_plain(
    parts: tuple[str | tuple[str, ...], ...], scope: Mapping[str, Any]
) -> str | None:
    """What Liquid renders for a plain template, where every name is a text or a whole
    number found by its keys; None where Liquid has a say (a missing key, another kind of
    value, output past the limit), so Liquid renders it instead."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value: Any = scope
        for key in part:
            if type(value) is not dict or key not in value:
                return None
            value = value[key]
        if type(value) is str:
            out.append(value)
        elif type(value) is int and -_WIDEST < value < _WIDEST:
            out.append(str(value))
        else:
            return None
    text = "".join(out)
    if "\r" in text:
        return None  # Liquid's output turns carriage returns into line feeds
    # Liquid's limit counts the output's UTF-8 bytes.
    fits = len(text) <= MAX_TEXT // 4 or len(text.encode()) <= MAX_TEXT
    return text if fits else None


def render_fields(
    fields: Mapping[str, Any], scope: Mapping[str, Any], step: str | None = None
) -> dict[str, Any]:
    """Render every string value of `fields`; other values are kept as they are."""
    return {
        key: render(value, scope, step) if isinstance(value, str) else value
        for key, value in fields.items()
    }


_OUTPUT = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_TAG = re.compile(r"\{%.*?%\}", re.DOTALL)
_PATH = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*|\[\d+\])*$")


def _placeholder(found: re.Match[str], slips: set[str]) -> str:
    variable = found.group(1).split("|", 1)[0].strip()
    if not _PATH.match(variable):
        return "{{ … }}"
    if _INDEX.sub(r".\1", variable) in slips:  # empty when sent: shown as written
        return "{{ " + variable + " }}"
    return "[" + _INDEX.sub("", variable).split(".")[-1] + "]"


_INDEX = re.compile(
    r"\[(\d+)\]"
)  # `tags[0]`, which the template's analysis names `tags.0`


def gist(source: object, limit: int = 40) -> str:
    """A template as a short line: `Hi {{ customer.traits.first_name }}, …` reads
    `Hi [first_name], …`, while a name read from outside the template that holds nothing
    stays as written (`{{ first_name }}`; a loop's or an assigned name is not one); tags
    are left out and the text is cut near `limit` characters."""
    if not isinstance(source, str):
        return ""
    slips = {path for path, _meant_name in unknown_names(source)}
    text = _TAG.sub(" ", _OUTPUT.sub(lambda found: _placeholder(found, slips), source))
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


def _uses(source: object) -> list[tuple[str, list[str]]]:
    """(root name, the parts of the path) of each name `source` reads; an unreadable
    template reads none here (`check` says what is wrong with it)."""
    if not isinstance(source, str) or "{" not in source:
        return []
    try:
        analysis = _compile(source).analyze()
    except (TemplateError, LiquidError):
        return []
    return [
        (name, [str(part) for part in use.segments])
        for name, uses in analysis.globals.items()
        for use in uses
    ]


def names(source: object) -> list[str]:
    """Every dotted name `source` reads (`event.properties.cart_value`)."""
    return sorted({".".join(parts) for _name, parts in _uses(source)})


def unknown_names(source: object) -> list[tuple[str, str]]:
    """Each name `source` uses that cannot hold a value, with the one it probably meant:
    `customer.first_name` -> `customer.traits.first_name`."""
    found: dict[str, str] = {}
    for name, parts in _uses(source):
        meant = _meant(name, parts)
        if meant is not None:
            found[".".join(parts)] = meant
    return sorted(found.items())


def _meant(name: str, parts: Sequence[str]) -> str | None:
    """The name probably meant by the path `parts` under root `name`, when the path itself
    can hold no value; None when it can."""
    if name not in ROOTS:
        return "customer.traits." + ".".join(parts)
    if name == "customer" and len(parts) > 1 and parts[1] not in CUSTOMER_NAMES:
        return "customer.traits." + ".".join(parts[1:])
    if name in ("event", "trigger") and len(parts) > 1 and parts[1] not in EVENT_NAMES:
        return f"{name}.properties." + ".".join(parts[1:])
    return None


def _lookup(parts: tuple[str, ...], scope: Mapping[str, Any]) -> Any:
    value: Any = scope
    for part in parts:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and list_index(part) < len(value):
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
        for variable, parts in _printed(source):
            value = _lookup(parts, scope)
            if value is None or (isinstance(value, str) and not value.strip()):
                found[variable] = None
    return list(found)


@lru_cache(maxsize=2048)
def _printed(source: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The names `source` prints without a `default` filter, each with its parts."""
    printed = []
    for output in _OUTPUT.finditer(source):
        variable, _bar, filters = output.group(1).partition("|")
        variable = variable.strip()
        if _PATH.match(variable) and "default" not in filters:
            parts = tuple(re.sub(r"\[(\d+)\]", r".\1", variable).split("."))
            printed.append((variable, parts))
    return tuple(printed)
