"""Small helpers the node types' summaries share: names that may be missing, channel names."""

from __future__ import annotations

from typing import Any

from engine.language import rules
from engine.language.nodes import Channels

BLANK = "…"  # stands for a setting the marketer has not filled in yet


def name(value: Any) -> str:
    """An event, trait or port name from a config, or BLANK when it is not set."""
    return value.strip() if isinstance(value, str) and value.strip() else BLANK


def channel(slug: Any, channels: Channels) -> str:
    """A channel by its name when it is known, else by its slug."""
    if not isinstance(slug, str) or not slug.strip():
        return "a channel"
    return channels.get(slug, slug)


def where(rule: Any) -> str:
    """` where <rule>` for an optional filter, or nothing."""
    return f" where {rules.describe(rule)}" if rule else ""


def listing(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# The words on the edge leaving each named output (the canvas draws the same).
_OUTPUT_WORDS = {
    ("condition", "true"): "yes",
    ("condition", "false"): "no",
    ("wait_for_event", "event"): "got the event",
    ("wait_for_event", "timeout"): "timed out",
    ("switch", "default"): "otherwise",
    ("decide", "default"): "otherwise",
    ("decide", "error"): "if it fails",
    ("send", "error"): "if it fails",
    ("webhook", "error"): "if it fails",
    ("send", "suppressed"): "if held back",
}


def edge_words(type_name: str, config: Any, port: str) -> str:
    """The words on the edge leaving `port` ("" for a step's usual way on), as the canvas
    writes them: "yes", "got order_completed", "bot 45%", "if it fails"."""
    if port == "out":
        return ""
    config = config if isinstance(config, dict) else {}
    if type_name == "wait_for_event" and port == "event":
        event = config.get("event")
        return f"got {event}" if isinstance(event, str) and event else "got the event"
    if type_name == "split":
        for branch in config.get("branches") or []:
            if isinstance(branch, dict) and branch.get("port") == port:
                percent = branch.get("percent")
                if isinstance(percent, int | float) and not isinstance(percent, bool):
                    return f"{port} {percent:g}%"
    return _OUTPUT_WORDS.get((type_name, port), port)


def output(type_name: str, port: str) -> str:
    """A step's output as the marketer reads it: “the output” or “the “timed out” output”."""
    if port == "out":
        return "its output"
    return f"its “{_OUTPUT_WORDS.get((type_name, port), port)}” output"
