"""A ready-to-run signed request, shown with a channel's new secrets."""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass
from datetime import datetime

from standardwebhooks.webhooks import Webhook

TOLERANCE_MINUTES = 5  # how long a signature stays fresh (Standard Webhooks)


@dataclass(frozen=True)
class ExampleRequest:
    url: str
    body: str
    headers: dict[str, str]
    signed_at: datetime

    @property
    def curl(self) -> str:
        """The request as a curl command, one header per line."""
        lines = [f"curl -X POST {shlex.quote(self.url)}"]
        lines += [
            f"  -H {shlex.quote(f'{name}: {value}')}"
            for name, value in self.headers.items()
        ]
        lines.append(f"  --data-raw {shlex.quote(self.body)}")
        return " \\\n".join(lines)


def example_event(now: datetime) -> dict[str, object]:
    """An event that satisfies the inbound contract, for a first try."""
    return {
        "type": "signed_up",
        "customer": {"id": "c-42", "email": "ada@example.com"},
        "traits": {"first_name": "Ada"},
        "properties": {"plan": "trial"},
        "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def signed_example(url: str, secret: str, now: datetime) -> ExampleRequest:
    """The example event, signed with `secret` per Standard Webhooks, ready for `url`."""
    body = json.dumps(example_event(now), separators=(",", ":"))
    webhook_id = "msg_" + secrets.token_hex(12)
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
    }
    return ExampleRequest(url, body, headers, now)
