"""switch: take the port of the first case whose rule holds, else `default`."""

from __future__ import annotations

from typing import Any

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
    _words,
    register,
)


def _cases(config: Config) -> list[dict[str, Any]]:
    cases = config.get("cases")
    return [c for c in cases if isinstance(c, dict)] if isinstance(cases, list) else []


@register
class Switch(NodeType):
    type_name = "switch"
    label = "Switch"
    help = "Tests cases in order and follows the first that holds; when none does, the path otherwise."
    fields = {"cases": "list of {port, rule}, tested in order"}

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        names = [c["port"] for c in _cases(config) if isinstance(c.get("port"), str)]
        return [Port(name) for name in dict.fromkeys(names)] + [Port("default")]

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        problems = _checks.unknown_keys(config, self.fields)
        cases = config.get("cases")
        if not isinstance(cases, list) or not cases:
            return [*problems, ("cases", "add at least one case")]
        seen: set[str] = set()
        for index, case in enumerate(cases):
            where = f"cases[{index}]"
            if not isinstance(case, dict):
                problems.append((where, "each case needs a path name and a condition"))
                continue
            problems += _checks.unknown_keys(case, ("port", "rule"))
            problems += _checks.port_name(case.get("port"), f"{where}.port")
            port = case.get("port")
            if port == "default":
                problems.append(
                    (
                        f"{where}.port",
                        "“default” names the path taken when no case holds; "
                        "choose another name",
                    )
                )
            elif port in seen:
                problems.append(
                    (
                        f"{where}.port",
                        f"two cases are named “{port}”; give each its own name",
                    )
                )
            if isinstance(port, str):
                seen.add(port)
            problems += rules.problems(case.get("rule"), f"{where}.rule")
        return problems

    def summary(self, config: Config, channels: Channels) -> str:
        cases = [
            f"{_words.name(case.get('port'))} if {rules.describe(case.get('rule'))}"
            for case in _cases(config)
        ]
        # The canvas calls the default path "otherwise"; the summary reads the same way.
        return "Switch: " + "; ".join([*cases, "otherwise if none of these"])

    def run(self, ctx: RunContext) -> Outcome:
        for case in _cases(ctx.config):
            verdict = rules.evaluate(case["rule"], ctx.scope)
            if verdict.matched:
                return Outcome(port=case["port"], detail={"reason": verdict.reason})
        return Outcome(port="default", detail={"reason": "no case matched"})
