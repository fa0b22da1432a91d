"""trigger: the event that starts a run, optionally filtered by a rule."""

from __future__ import annotations

from typing import Any

from engine.language import rules
from engine.language.nodes import (
    Channels,
    CheckContext,
    Config,
    NodeType,
    Outcome,
    RunContext,
    _checks,
    _words,
    register,
)


def matches(config: Config, event_type: str, scope: dict[str, Any]) -> rules.Verdict:
    """Whether an event of `event_type` (with `scope`) starts a run of this trigger."""
    if event_type != config.get("event"):
        return rules.Verdict(
            False, f"event {event_type!r} is not {config.get('event')!r}"
        )
    where = config.get("where")
    if where is None:
        return rules.Verdict(True, f"event {event_type!r}")
    verdict = rules.evaluate(where, scope)
    return rules.Verdict(
        verdict.matched, f"event {event_type!r} where {verdict.reason}"
    )


@register
class Trigger(NodeType):
    type_name = "trigger"
    label = "Trigger"
    help = "Starts the journey when a channel reports this event, optionally filtered."
    fields = {
        "event": "event type that starts a run",
        "where": "rule the event must match",
    }

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        return (
            _checks.unknown_keys(config, self.fields)
            + _checks.text(
                config,
                "event",
                "the trigger event",
                ask="name the event that starts the journey, e.g. cart_abandoned",
            )
            + _checks.rule(config, "where", required=False)
        )

    def summary(self, config: Config, channels: Channels) -> str:
        return f"When {_words.name(config.get('event'))}{_words.where(config.get('where'))}"

    def run(self, ctx: RunContext) -> Outcome:
        return Outcome(
            port="out", detail={"reason": f"entered on {ctx.config.get('event')}"}
        )
