"""decide: ask a decision table, leave by its outcome (or `default`), keep its values.

The table's values are kept in the run as `context.decisions.<table key>`, for later
rules and templates. Outputs are the live table's outcomes plus `default`, taken when no
rule of the table matched.
"""

from __future__ import annotations

from engine.decisions import KEY, decide
from engine.language.nodes import (
    Channels,
    CheckContext,
    Config,
    NodeError,
    NodeType,
    Outcome,
    Port,
    RunContext,
    _checks,
    _words,
    register,
)


@register
class Decide(NodeType):
    type_name = "decide"
    label = "Decide"
    help = (
        "Asks a decision table kept in one place (e.g. the support tier) and follows "
        "the outcome it gives; its values are kept for later steps."
    )
    fields = {"table": "the key of the decision table to ask"}

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        key = config.get("table")
        outcomes = (
            (ctx.decisions or {}).get(key, ()) if ctx and isinstance(key, str) else ()
        )
        return [
            *(Port(name) for name in outcomes),
            Port("default"),
            Port("error", required=False),  # the table has no live version any more
        ]

    def knows_ports(self, ctx: CheckContext | None) -> bool:
        return ctx is not None and ctx.decisions is not None

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        problems = _checks.unknown_keys(config, self.fields)
        key = config.get("table")
        if not isinstance(key, str) or not key:
            return [*problems, ("table", "choose the decision table to ask")]
        if not KEY.match(key):
            return [*problems, ("table", f"there is no decision table called “{key}”")]
        if ctx.decisions is not None and key not in ctx.decisions:
            problems.append(
                (
                    "table",
                    f"there is no decision table “{key}” with a published version; "
                    "choose another, or publish it first",
                )
            )
        return problems

    def summary(self, config: Config, channels: Channels) -> str:
        return f"Decide by the table {_words.name(config.get('table'))}"

    def run(self, ctx: RunContext) -> Outcome:
        key = str(ctx.config.get("table"))
        live = ctx.tables(key) if ctx.tables is not None else None
        if live is None:
            raise NodeError(f"the decision table “{key}” has no published version")
        decision = decide(live.table, ctx.scope)
        return Outcome(
            port=decision.outcome if decision.rule is not None else "default",
            fallback="default",
            context={"decisions": {key: dict(decision.values)}},
            detail={
                "reason": decision.reason,
                "table": key,
                "version": live.version,
                "outcome": decision.outcome,
                "rule": decision.rule,
            },
        )
