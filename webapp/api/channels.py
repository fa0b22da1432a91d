from __future__ import annotations

from typing import Any

from flask import jsonify, request
from sqlalchemy import select

from engine import channels, durations
from engine.channels import describe_channel, find_channel
from engine.models import Channel, Role, utcnow
from webapp.api import bp
from webapp.api.errors import ApiError, json_body
from webapp.hooks.channels import forget
from webapp.paging import paginate
from webapp.security import acting_user, requires
from webapp.services import db, services

DEFAULT_GRACE = "P1D"


def _channel(slug: str) -> Channel:
    channel = find_channel(db(), slug)
    if channel is None:
        raise ApiError(404, f"there is no channel {slug!r}")
    return channel


@bp.post("/channels")
@requires(Role.admin)
def create_channel_call() -> Any:
    """Create a channel; its secrets are in this answer and never again."""
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(422, "send an object {slug, name, kind, outbound_url?}")
    for name in ("slug", "kind"):
        if not isinstance(body.get(name), str):
            raise ApiError(422, f"{name} is required text", name)
    rate_limit = body.get("rate_limit", 100)
    if isinstance(rate_limit, bool) or not isinstance(rate_limit, int):
        raise ApiError(
            422, "rate_limit is a whole number of events per second", "rate_limit"
        )
    outbound_url = body.get("outbound_url")
    if outbound_url is not None and not isinstance(outbound_url, str):
        raise ApiError(422, "outbound_url is a URL or null", "outbound_url")
    made = channels.create(
        db(),
        services().box,
        body["slug"],
        str(body.get("name") or body["slug"]),
        body["kind"],
        acting_user(),
        outbound_url,
        rate_limit,
        services().settings.outbound_allowed_networks,
    )
    db().commit()
    forget()  # this process's webhooks see the new channel at once
    response = jsonify(
        {
            **describe_channel(made.channel),
            "inbound_secret": made.inbound_secret,
            "outbound_secret": made.outbound_secret,
        }
    )
    response.status_code = 201
    return response


@bp.get("/channels")
@requires(Role.viewer)
def list_channels() -> Any:
    page = paginate(db(), select(Channel).order_by(Channel.slug))
    return jsonify(
        channels=[describe_channel(c) for c in page.items],
        page=page.number,
        pages=page.pages,
        total=page.total,
    )


@bp.get("/channels/<slug>")
@requires(Role.viewer)
def get_channel(slug: str) -> Any:
    return jsonify(describe_channel(_channel(slug)))


@bp.post("/channels/<slug>/rotate")
@requires(Role.admin)
def rotate_channel(slug: str) -> Any:
    """New secrets; the old inbound secret keeps working for the grace period (default P1D)."""
    channel = _channel(slug)
    body = json_body() if request.data else {}
    grace_text = (
        body.get("grace_period", DEFAULT_GRACE)
        if isinstance(body, dict)
        else DEFAULT_GRACE
    )
    try:
        rotated = channels.rotate(
            db(), services().box, channel, acting_user(), grace_text, utcnow()
        )
    except durations.DurationError as error:
        raise ApiError(422, str(error), "grace_period") from None
    db().commit()
    forget()  # this process's webhooks take the new secret at once
    return jsonify(
        slug=slug,
        inbound_secret=rotated.inbound_secret,
        outbound_secret=rotated.outbound_secret,
        previous_valid_until=rotated.previous_valid_until.isoformat(),
    )
