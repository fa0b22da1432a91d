"""Small config checks shared by node types; each returns (field, sentence) pairs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from engine import durations
from engine.language import rules, templates
from engine.language.nodes import CheckContext, Config

PORT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
Problems = list[tuple[str, str]]


def unknown_keys(config: Config, allowed: Iterable[str]) -> Problems:
    extra = sorted(set(config) - set(allowed))
    return [(key, f"“{key}” is not a setting of this step; remove it") for key in extra]


def text(
    config: Config, key: str, what: str, required: bool = True, ask: str | None = None
) -> Problems:
    """A name the marketer must give; `ask` says in their words what to do when it is missing."""
    value = config.get(key)
    if value is None:
        return [(key, ask or f"give {what}")] if required else []
    if not isinstance(value, str) or not value.strip():
        return [(key, ask or f"give {what}")]
    return []


def duration(config: Config, key: str, what: str, **options: bool) -> Problems:
    if key not in config:
        return [(key, f"give {what}")]
    try:
        durations.parse(config[key], **options)
    except durations.DurationError as error:
        return [(key, f"{what}: {error}")]
    return []


def rule(config: Config, key: str, required: bool = True) -> Problems:
    if key not in config:
        return [(key, "add a condition")] if required else []
    return rules.problems(config[key], key)


def channel(
    config: Config, key: str, ctx: CheckContext, required: bool = True
) -> Problems:
    problems = text(
        config, key, "the channel", required, ask="choose the channel to send through"
    )
    value = config.get(key)
    if not problems and value is not None and ctx.channels is not None:
        if value not in ctx.channels:
            known = ", ".join(sorted(ctx.channels)) or "none yet"
            problems.append(
                (key, f"there is no channel “{value}”; choose one of: {known}")
            )
    return problems


def template_map(
    config: Config, key: str, what: str, required: bool, ctx: CheckContext
) -> Problems:
    value: Any = config.get(key)
    if value is None:
        return [(key, f"give {what}")] if required else []
    if not isinstance(value, dict) or (required and not value):
        return [(key, f"give {what}: at least one field, each with its text")]
    problems: Problems = []
    for name, source in value.items():
        if isinstance(source, str):
            message = templates.check(source, ctx.step)
            if message:
                problems.append((f"{key}.{name}", message))
        elif not isinstance(source, int | float | bool) and source is not None:
            problems.append(
                (f"{key}.{name}", f"“{name}” must be text or a plain value")
            )
    return problems


def port_name(value: Any, where: str) -> Problems:
    if not isinstance(value, str) or not PORT_NAME.match(value):
        return [
            (
                where,
                "a branch's name is 1 to 32 lower-case letters, digits or _, "
                "starting with a letter",
            )
        ]
    return []
