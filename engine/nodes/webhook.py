"""webhook: call any HTTPS URL with a rendered body; private addresses are refused."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from engine import templates
from engine.nodes import (
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

LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal")


def url_problem(url: object, allowed_hosts: frozenset[str]) -> str | None:
    """Why `url` may not be called (before DNS resolution), or None."""
    if not isinstance(url, str) or not url.strip():
        return "give the URL to call"
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")  # "localhost." is localhost
    if not host:
        return f"“{url}” is not a full address such as https://example.com/hook"
    if host in allowed_hosts:
        return (
            None
            if parts.scheme in {"http", "https"}
            else "the URL must start with https://"
        )
    if parts.scheme != "https":
        return "the URL must start with https://"
    if parts.username or parts.password:
        return "put credentials in headers, not in the URL"
    if host == "localhost" or host.endswith(LOCAL_NAMES):
        return f"{host} is a local address; webhooks may only call public hosts"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return f"{host} is a private, loopback or link-local address; webhooks may only call public hosts"
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

    def ports(self, config: Config) -> list[Port]:
        return [Port("out"), Port("error", required=False)]

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        problems = _checks.unknown_keys(config, self.fields)
        message = url_problem(config.get("url"), ctx.allowed_hosts)
        if message:
            problems.append(("url", message))
        problems += _checks.template_map(config, "body", "the body", required=False)
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
            body = templates.render_fields(config.get("body") or {}, ctx.scope)
            headers = templates.render_fields(config.get("headers") or {}, ctx.scope)
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
