"""send: render a message and hand it to a channel (with an optional fallback channel)."""

from __future__ import annotations

from typing import Any

from engine.language import templates
from engine.language.nodes import (
    Channels,
    CheckContext,
    Config,
    NodeError,
    NodeType,
    Outcome,
    Port,
    RunContext,
    Send,
    _checks,
    _words,
    register,
)

# The message field that best says what a message is about, when it has several.
HEADLINES = ("subject", "title", "text", "task", "body")


def _headline(message: object) -> object:
    if not isinstance(message, dict):
        return None
    for key in (*HEADLINES, *message):
        if isinstance(message.get(key), str) and message[key].strip():
            return message[key]
    return None


@register
class SendMessage(NodeType):
    type_name = "send"
    label = "Send"
    help = "Sends a message through a channel; if it fails, tries the fallback channel."
    fields = {
        "channel": "channel slug",
        "message": "fields of the message, each a Liquid template",
        "fallback_channel": "channel slug tried when the first fails",
        "transactional": "true for a receipt or password reset: brand-wide policies "
        "(frequency caps, quiet hours, the global holdout) never hold it back",
    }

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        # suppressed: a brand-wide policy kept the message from being sent.
        return [
            Port("out"),
            Port("error", required=False),
            Port("suppressed", required=False),
        ]

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        problems = (
            _checks.unknown_keys(config, self.fields)
            + _checks.channel(config, "channel", ctx)
            + _checks.template_map(
                config, "message", "the message", required=True, ctx=ctx
            )
            + _checks.channel(config, "fallback_channel", ctx, required=False)
        )
        if not isinstance(config.get("transactional", False), bool):
            problems.append(("transactional", "give true or false"))
        if config.get("fallback_channel") and config.get(
            "fallback_channel"
        ) == config.get("channel"):
            problems.append(
                ("fallback_channel", "the fallback must be another channel")
            )
        return problems

    def summary(self, config: Config, channels: Channels) -> str:
        text = f"Send via {_words.channel(config.get('channel'), channels)}"
        if config.get("fallback_channel"):
            fallback = _words.channel(config.get("fallback_channel"), channels)
            text += f" ({fallback} if it fails)"
        if config.get("transactional") is True:
            text += ", transactional"
        gist = templates.gist(_headline(config.get("message")))
        return f"{text}: {gist}" if gist else text

    def run(self, ctx: RunContext) -> Outcome:
        config = ctx.config
        try:
            message = templates.render_fields(config["message"], ctx.scope, ctx.step)
        except templates.TemplateError as error:
            raise NodeError(str(error)) from None
        empty = tuple(templates.empty_names(config["message"], ctx.scope))
        send = Send(
            ctx.node_id,
            config["channel"],
            message,
            config.get("fallback_channel"),
            empty,
            config.get("transactional") is True,
        )
        detail: dict[str, Any] = {
            "reason": f"message to {config['channel']}",
            "message": message,
        }
        if empty:
            detail["empty"] = list(empty)
        return Outcome(port="out", sends=[send], detail=detail)
