"""wait_for_event: hold the run until an event arrives (port `event`) or a timeout (`timeout`)."""

from __future__ import annotations

from engine import durations
from engine.language.nodes import (
    Await,
    Channels,
    CheckContext,
    Config,
    NodeType,
    Outcome,
    Port,
    RunContext,
    _checks,
    _words,
    register,
)


@register
class WaitForEvent(NodeType):
    type_name = "wait_for_event"
    label = "Wait for event"
    help = "Waits until the customer does something (on any channel), or gives up after a time."
    fields = {
        "event": "event type awaited",
        "where": "rule the event must match",
        "timeout": "ISO 8601 duration",
    }
    waits = True

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        return [Port("event"), Port("timeout")]

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        return (
            _checks.unknown_keys(config, self.fields)
            + _checks.text(
                config,
                "event",
                "the awaited event",
                ask="name the event to wait for, e.g. order_completed",
            )
            + _checks.rule(config, "where", required=False)
            + _checks.duration(config, "timeout", "the timeout")
        )

    def summary(self, config: Config, channels: Channels) -> str:
        timeout = durations.in_words(config.get("timeout")) or _words.BLANK
        event = _words.name(config.get("event"))
        return f"Wait for {event}{_words.where(config.get('where'))}, up to {timeout}"

    def run(self, ctx: RunContext) -> Outcome:
        config = ctx.config
        if ctx.resume is not None and ctx.resume.kind == "event":
            return Outcome(
                port="event", detail={"reason": f"{config['event']} arrived"}
            )
        if ctx.resume is not None:
            return Outcome(
                port="timeout",
                detail={
                    "reason": f"no {config['event']} within "
                    f"{durations.in_words(config['timeout'])}"
                },
            )
        timeout_at = durations.add(ctx.now, config["timeout"])
        return Outcome(
            awaits=Await(config["event"], config.get("where"), timeout_at),
            detail={
                "reason": f"waiting up to {durations.in_words(config['timeout'])} for {config['event']}"
            },
        )
