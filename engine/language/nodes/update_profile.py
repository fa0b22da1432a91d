"""update_profile: set, unset or increment traits of the customer."""

from __future__ import annotations

from engine.language import templates
from engine.language.nodes import (
    Channels,
    CheckContext,
    Config,
    NodeError,
    NodeType,
    Outcome,
    ProfileChange,
    RunContext,
    _checks,
    _words,
    register,
)


@register
class UpdateProfile(NodeType):
    type_name = "update_profile"
    label = "Update profile"
    help = "Changes the customer's traits: set values (templates allowed), remove or count up."
    fields = {
        "set": "traits to set",
        "unset": "traits to remove",
        "increment": "traits to add a number to",
    }

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        problems = _checks.unknown_keys(config, self.fields)
        if not any(config.get(key) for key in self.fields):
            return [
                *problems,
                ("set", "change at least one trait: set it, clear it or add to it"),
            ]
        if "set" in config:
            problems += _checks.template_map(
                config, "set", "set", required=False, ctx=ctx
            )
        unset = config.get("unset", [])
        if not isinstance(unset, list) or not all(
            isinstance(t, str) and t for t in unset
        ):
            problems.append(("unset", "name each trait to clear"))
            unset = []
        increment = config.get("increment", {})
        if not isinstance(increment, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool)
            for v in increment.values()
        ):
            problems.append(("increment", "give each trait to add to a number"))
            increment = {}
        changed = config.get("set")
        named = [*(changed if isinstance(changed, dict) else {}), *unset, *increment]
        for trait in sorted({t for t in named if named.count(t) > 1}):
            problems.append(
                ("set", f"the trait “{trait}” is changed twice; change it once")
            )
        return problems

    def summary(self, config: Config, channels: Channels) -> str:
        changes: list[str] = []
        if isinstance(config.get("set"), dict):
            changes += [str(trait) for trait in config["set"]]
        if isinstance(config.get("increment"), dict):
            for trait, amount in config["increment"].items():
                if isinstance(amount, int | float) and amount < 0:
                    changes.append(f"{trait} − {-amount:g}")
                else:
                    changes.append(
                        f"{trait} + {amount:g}"
                        if isinstance(amount, int | float)
                        else f"{trait} + ?"
                    )
        unset = config.get("unset")
        if isinstance(unset, list) and unset:
            changes.append("clear " + _words.listing([str(t) for t in unset]))
        return "Set " + ", ".join(changes) if changes else f"Change {_words.BLANK}"

    def run(self, ctx: RunContext) -> Outcome:
        config = ctx.config
        try:
            values = templates.render_fields(
                config.get("set") or {}, ctx.scope, ctx.step
            )
        except templates.TemplateError as error:
            raise NodeError(str(error)) from None
        change = ProfileChange(
            values, list(config.get("unset") or []), dict(config.get("increment") or {})
        )
        return Outcome(
            port="out",
            profile=change,
            detail={"reason": "profile updated", "set": values},
        )
