"""wait: hold the run for a fixed ISO 8601 duration."""

from __future__ import annotations

from engine import durations
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


@register
class Wait(NodeType):
    type_name = "wait"
    label = "Wait"
    help = "Holds the customer here for a while, e.g. an hour or two days."
    fields = {"duration": "ISO 8601 duration"}
    waits = True

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        return _checks.unknown_keys(config, self.fields) + _checks.duration(
            config, "duration", "the duration"
        )

    def summary(self, config: Config, channels: Channels) -> str:
        return f"Wait {durations.in_words(config.get('duration')) or _words.BLANK}"

    def run(self, ctx: RunContext) -> Outcome:
        if ctx.resume is not None:
            return Outcome(
                port="out",
                detail={
                    "reason": "waited " + durations.in_words(ctx.config["duration"])
                },
            )
        wake = durations.add(ctx.now, ctx.config["duration"])
        return Outcome(
            wake_at=wake,
            detail={"reason": f"waiting {durations.in_words(ctx.config['duration'])}"},
        )
