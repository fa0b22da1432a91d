"""webhook: call any HTTPS URL with a rendered body; private addresses are refused."""

from __future__ import annotations

from urllib.parse import urlsplit

from engine import outbound
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
    WebhookCall,
    _checks,
    _words,
    register,
)


def url_problem(
    url: object,
    allowed_hosts: frozenset[str],
    allowed_networks: tuple[outbound.Network, ...] = (),
) -> str | None:
    """Why `url` may not be called, judged before DNS resolution, or None.

    The host is read as the client will read it (engine/outbound.py), so a percent-encoded,
    decimal or IDNA spelling of a private address is refused like the address itself.
    """
    if not isinstance(url, str) or not url.strip():
        return "give the URL to call"
    try:
        target = outbound.read_url(url)
    except outbound.AddressError as error:
        return str(error)
    allowed = target.host in allowed_hosts
    if target.scheme != "https" and not (allowed and target.scheme == "http"):
        return "the URL must start with https://"
    if target.userinfo:
        return "put credentials in headers, not in the URL"
    policy = outbound.Policy(allowed_networks, allowed_hosts)
    problem = outbound.host_problem(target, policy)
    if problem:
        return f"{problem}; webhooks may only call public hosts"
    return None


@register
class Webhook(NodeType):
    type_name = "webhook"
    label = "Webhook"
    help = "Calls an HTTPS URL with a JSON body built from templates."
    fields = {
        "url": "HTTPS URL",
        "body": "JSON fields, each a Liquid template",
        "headers": "extra HTTP headers",
    }

    def ports(self, config: Config, ctx: CheckContext | None = None) -> list[Port]:
        return [Port("out"), Port("error", required=False)]

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        problems = _checks.unknown_keys(config, self.fields)
        message = url_problem(
            config.get("url"), ctx.allowed_hosts, ctx.allowed_networks
        )
        if message:
            problems.append(("url", message))
        problems += _checks.template_map(
            config, "body", "the body", required=False, ctx=ctx
        )
        headers = config.get("headers")
        if headers is not None and (
            not isinstance(headers, dict)
            or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
            )
        ):
            problems.append(
                ("headers", "headers are an object of names to text values")
            )
        elif headers:
            framing = sorted(k for k in headers if k.lower() in outbound.CLIENT_HEADERS)
            if framing:
                problems.append(
                    (
                        "headers",
                        f"{', '.join(framing)}: the HTTP client sets "
                        f"{'this header' if len(framing) == 1 else 'these headers'} "
                        "itself",
                    )
                )
        return problems

    def summary(self, config: Config, channels: Channels) -> str:
        url = config.get("url")
        parts = urlsplit(url.strip()) if isinstance(url, str) else None
        if parts is None or not parts.hostname:
            return f"Call {_words.BLANK}"
        return f"Call {parts.hostname}{parts.path if parts.path != '/' else ''}"

    def run(self, ctx: RunContext) -> Outcome:
        config = ctx.config
        try:
            body = templates.render_fields(
                config.get("body") or {}, ctx.scope, ctx.step
            )
            headers = templates.render_fields(
                config.get("headers") or {}, ctx.scope, ctx.step
            )
        except templates.TemplateError as error:
            raise NodeError(str(error)) from None
        call = WebhookCall(
            ctx.node_id, config["url"], body, {k: str(v) for k, v in headers.items()}
        )
        return Outcome(
            port="out",
            webhooks=[call],
            detail={"reason": f"call {config['url']}", "body": body},
        )
