"""split: share customers between branches by percentage, the same side every time."""

from __future__ import annotations

import hashlib
from typing import Any

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

BUCKETS = 10_000


def bucket(customer_key: str, node_id: str) -> int:
    """A stable number in [0, 10000) for this customer at this node."""
    digest = hashlib.sha256(f"{customer_key}\x1f{node_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def _branches(config: Config) -> list[dict[str, Any]]:
    branches = config.get("branches")
    return (
        [b for b in branches if isinstance(b, dict)]
        if isinstance(branches, list)
        else []
    )


@register
class Split(NodeType):
    type_name = "split"
    label = "Split"
    help = "Divides customers between paths by percentage; a branch can be a holdout group."
    fields = {"branches": "list of {port, percent, holdout?}; percents sum to 100"}

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        names = [b["port"] for b in _branches(config) if isinstance(b.get("port"), str)]
        return [Port(name) for name in dict.fromkeys(names)]

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        problems = _checks.unknown_keys(config, self.fields)
        branches = config.get("branches")
        if not isinstance(branches, list) or len(branches) < 2:
            return [*problems, ("branches", "give the split at least two branches")]
        total, seen = 0.0, set()
        for index, branch in enumerate(branches):
            where = f"branches[{index}]"
            if not isinstance(branch, dict):
                problems.append((where, "each branch needs a name and a percentage"))
                continue
            problems += _checks.unknown_keys(branch, ("port", "percent", "holdout"))
            problems += _checks.port_name(branch.get("port"), f"{where}.port")
            if branch.get("port") in seen:
                problems.append(
                    (
                        f"{where}.port",
                        f"two branches are named “{branch['port']}”; give each its own name",
                    )
                )
            seen.add(branch.get("port"))
            percent = branch.get("percent")
            if (
                isinstance(percent, bool)
                or not isinstance(percent, int | float)
                or not 0 < percent <= 100
            ):
                problems.append(
                    (
                        f"{where}.percent",
                        "a branch's share is a percentage above 0, at most 100",
                    )
                )
            else:
                total += percent
            if "holdout" in branch and not isinstance(branch["holdout"], bool):
                problems.append(
                    (
                        f"{where}.holdout",
                        "say whether the branch is a holdout: yes or no",
                    )
                )
        if abs(total - 100) > 1e-9 and not any(
            f.endswith(".percent") for f, _ in problems
        ):
            problems.append(
                (
                    "branches",
                    f"the shares add up to {total:g}%; make them add up to 100%",
                )
            )
        return problems

    def summary(self, config: Config, channels: Channels) -> str:
        shares = []
        for branch in _branches(config):
            percent = branch.get("percent")
            shown = f"{percent:g}%" if isinstance(percent, int | float) else "?%"
            held = (
                " (holdout)"
                if branch.get("holdout") is True and branch.get("port") != "holdout"
                else ""
            )
            shares.append(f"{shown} {_words.name(branch.get('port'))}{held}")
        return "Split " + (" / ".join(shares) or _words.BLANK)

    def run(self, ctx: RunContext) -> Outcome:
        drawn = bucket(ctx.customer_key, ctx.node_id)
        edge = 0.0
        branches = _branches(ctx.config)
        for branch in branches:
            edge += branch["percent"] * BUCKETS / 100
            if drawn < edge:
                break
        detail = {
            "reason": f"bucket {drawn / 100:.2f}% fell in branch {branch['port']}",
            "branch": branch["port"],
            "holdout": bool(branch.get("holdout")),
        }
        return Outcome(port=branch["port"], detail=detail)
