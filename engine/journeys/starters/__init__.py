"""Starter journeys shipped with Throughline: documents a marketer creates a journey from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class Starter:
    key: str
    title: str
    summary: str
    channels: tuple[str, ...]


CATALOGUE = (
    Starter(
        "cart_recovery",
        "Cart recovery",
        "A cart left on the web site: wait an hour for the order, then a call from "
        "support for VIPs and an email (SMS if it fails) for everyone else.",
        ("web", "email", "sms", "support-desk"),
    ),
    Starter(
        "vip_routing",
        "VIP routing",
        "Route a new support ticket: VIPs to premium support, everyone else split "
        "between a chatbot and a help article by email.",
        ("support-desk", "email"),
    ),
    Starter(
        "onboarding",
        "Onboarding across email and app",
        "Welcome a new sign-up by email, then a tip or a nudge in the app or by SMS "
        "depending on what they do; their first project is the goal.",
        ("email", "app", "sms"),
    ),
    Starter(
        "form_resume",
        "Form resumed on another device",
        "A form started on the web and left unfinished: remind the customer in the app "
        "so they can finish it there.",
        ("web", "app"),
    ),
)


def document(key: str) -> dict[str, Any]:
    """The starter's journey document; KeyError for an unknown key."""
    if key not in {starter.key for starter in CATALOGUE}:
        raise KeyError(key)
    found: dict[str, Any] = json.loads((FOLDER / f"{key}.json").read_text())
    return found
