"""exit: the run ends here, completed."""

from __future__ import annotations

from engine.language.nodes import (
    Channels,
    CheckContext,
    Config,
    NodeType,
    Outcome,
    Port,
    RunContext,
    _checks,
    register,
)


@register
class Exit(NodeType):
    type_name = "exit"
    label = "Exit"
    help = "Ends the journey for this customer."

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        return []

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        return _checks.unknown_keys(config, ())

    def summary(self, config: Config, channels: Channels) -> str:
        return "End the journey"

    def run(self, ctx: RunContext) -> Outcome:
        return Outcome(detail={"reason": "reached the exit"})
