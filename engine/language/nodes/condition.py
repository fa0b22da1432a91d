"""condition: take port `true` or `false` by a rule."""

from __future__ import annotations

from engine.language import rules
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
class Condition(NodeType):
    type_name = "condition"
    label = "Condition"
    help = "Sends the customer one way when the rule holds, the other way when it does not."
    fields = {"rule": "the rule to test"}

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        return [Port("true"), Port("false")]

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        return _checks.unknown_keys(config, self.fields) + _checks.rule(config, "rule")

    def summary(self, config: Config, channels: Channels) -> str:
        return f"If {rules.describe(config.get('rule'))}"

    def run(self, ctx: RunContext) -> Outcome:
        verdict = rules.evaluate(ctx.config["rule"], ctx.scope)
        return Outcome(
            port="true" if verdict.matched else "false",
            detail={"reason": verdict.reason},
        )
