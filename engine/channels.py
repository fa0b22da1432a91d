"""Channels: creation with Standard Webhooks secrets, stored encrypted; every change audited.

`create`, `update`, `disable`, `enable`, `rotate` and `send_test` are what a person (or the
command line) does to a channel, each with its audit entry. `create_channel` and
`rotate_secrets` are their building blocks, for callers that record their own entry (the
demo) or none (fixtures).
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, durations, outbound
from engine.crypto import SecretBox
from engine.delivery import new_test_delivery
from engine.models import Channel, ChannelKind, Delivery, User

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_RATE_LIMIT = 100_000


class ChannelError(ValueError):
    """A channel request that cannot be honoured; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class NewChannel:
    """A channel just created, with its secrets in clear: shown once, never again."""

    channel: Channel
    inbound_secret: str
    outbound_secret: str


def generate_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def create_channel(
    session: Session,
    box: SecretBox,
    slug: str,
    name: str,
    kind: ChannelKind | str,
    outbound_url: str | None = None,
    rate_limit: int = 100,
    allowed_networks: tuple[outbound.Network, ...] = (),
) -> NewChannel:
    """Add a channel with fresh secrets; the caller commits.

    `allowed_networks` are the private networks its outbound URL may point into
    (Settings.outbound_allowed_networks).
    """
    check_slug(slug)
    try:
        kind = ChannelKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ChannelKind)
        raise ChannelError(
            "kind", f"{kind!r} is not a channel kind; use one of {known}"
        ) from None
    if session.scalar(select(Channel.id).where(Channel.slug == slug)) is not None:
        raise ChannelError("slug", f"a channel with the slug {slug!r} already exists")
    check_outbound_url(outbound_url, allowed_networks)
    check_rate_limit(rate_limit)
    inbound, outgoing = generate_secret(), generate_secret()
    channel = Channel(
        slug=slug,
        name=name or slug,
        kind=kind,
        inbound_secret=box.encrypt(inbound),
        outbound_secret=box.encrypt(outgoing),
        outbound_url=outbound_url,
        enabled=True,
        rate_limit=rate_limit,
    )
    session.add(channel)
    session.flush()
    return NewChannel(channel, inbound, outgoing)


def find_channel(session: Session, slug: str) -> Channel | None:
    return session.scalar(select(Channel).where(Channel.slug == slug))


def channel_slugs(session: Session) -> frozenset[str]:
    return frozenset(session.scalars(select(Channel.slug)))


def channel_names(session: Session) -> dict[str, str]:
    """Every channel's name by its slug, for step summaries."""
    return {
        slug: name for slug, name in session.execute(select(Channel.slug, Channel.name))
    }


def check_outbound_url(
    url: str | None, allowed_networks: tuple[outbound.Network, ...] = ()
) -> None:
    """Raise ChannelError unless `url` is empty or an http(s) URL of a host it may call.

    Loopback, link-local and metadata addresses are refused, private ones unless inside
    `allowed_networks`; the host is read as the delivery client reads it.
    """
    if url is None or url == "":
        return
    try:
        target = outbound.read_url(url)
    except outbound.AddressError as error:
        if url.strip().lower().startswith(("http://", "https://")):
            raise ChannelError("outbound_url", str(error)) from None
        target = None
    if target is None or target.scheme not in outbound.DEFAULT_PORTS:
        raise ChannelError(
            "outbound_url", "give a full http:// or https:// URL, or nothing"
        )
    if target.userinfo:
        raise ChannelError(
            "outbound_url", "leave credentials out of the URL; actions are signed"
        )
    problem = outbound.host_problem(target, outbound.Policy(allowed_networks))
    if problem:
        raise ChannelError(
            "outbound_url",
            f"{problem}; actions may only go to public hosts, or to private networks "
            "listed in THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS",
        )


def check_slug(slug: str) -> None:
    """Raise ChannelError unless `slug` can name a channel in its webhook URL."""
    if not SLUG.match(slug):
        raise ChannelError(
            "slug",
            "use 1 to 63 lower-case letters, digits and dashes, not starting with a dash",
        )


def check_rate_limit(rate_limit: int) -> None:
    """Raise ChannelError unless `rate_limit` is 1 to MAX_RATE_LIMIT events per second."""
    if not 1 <= rate_limit <= MAX_RATE_LIMIT:
        raise ChannelError(
            "rate_limit", f"the rate limit is 1 to {MAX_RATE_LIMIT} events per second"
        )


def create(
    session: Session,
    box: SecretBox,
    slug: str,
    name: str,
    kind: ChannelKind | str,
    actor: User | None,
    outbound_url: str | None = None,
    rate_limit: int = 100,
    allowed_networks: tuple[outbound.Network, ...] = (),
) -> NewChannel:
    """Add a channel with fresh secrets and audit it; the caller commits."""
    made = create_channel(
        session, box, slug, name, kind, outbound_url, rate_limit, allowed_networks
    )
    audit.record(
        session,
        actor,
        "channel.create",
        "channel",
        made.channel.slug,
        {"kind": made.channel.kind.value},
    )
    return made


def update(
    session: Session,
    channel: Channel,
    actor: User | None,
    name: str,
    outbound_url: str | None,
    rate_limit: int,
    allowed_networks: tuple[outbound.Network, ...] = (),
) -> dict[str, list[object]]:
    """Change what may change after creation, audited; the caller commits.

    Returns {field: [before, after]} of each change; nothing changed records nothing.
    """
    check_outbound_url(outbound_url, allowed_networks)
    check_rate_limit(rate_limit)
    wanted: dict[str, object] = {
        "name": name or channel.slug,
        "outbound_url": outbound_url or None,
        "rate_limit": rate_limit,
    }
    changes: dict[str, list[object]] = {}
    for field, value in wanted.items():
        before = getattr(channel, field)
        if before != value:
            changes[field] = [before, value]
            setattr(channel, field, value)
    if changes:
        audit.record(session, actor, "channel.update", "channel", channel.slug, changes)
    return changes


def disable(session: Session, channel: Channel, actor: User | None) -> bool:
    """Refuse the channel's events (409) and suppress its actions, audited; the caller commits.

    Returns False when it was disabled already (nothing recorded).
    """
    if not channel.enabled:
        return False
    channel.enabled = False
    audit.record(session, actor, "channel.disable", "channel", channel.slug)
    return True


def enable(session: Session, channel: Channel, actor: User | None) -> bool:
    """Accept the channel's events and send it actions again, audited; the caller commits.

    Returns False when it was enabled already (nothing recorded).
    """
    if channel.enabled:
        return False
    channel.enabled = True
    audit.record(session, actor, "channel.enable", "channel", channel.slug)
    return True


@dataclass(frozen=True)
class RotatedSecrets:
    inbound_secret: str
    outbound_secret: str
    previous_valid_until: datetime


def rotate_secrets(
    session: Session, box: SecretBox, channel: Channel, grace: timedelta, now: datetime
) -> RotatedSecrets:
    """New inbound and outbound secrets; the old inbound one stays valid for `grace`."""
    inbound, outgoing = generate_secret(), generate_secret()
    channel.previous_inbound_secret = channel.inbound_secret
    channel.previous_inbound_expires_at = now + grace
    channel.inbound_secret = box.encrypt(inbound)
    channel.outbound_secret = box.encrypt(outgoing)
    session.flush()
    return RotatedSecrets(inbound, outgoing, now + grace)


def rotate(
    session: Session,
    box: SecretBox,
    channel: Channel,
    actor: User | None,
    grace_period: str,
    now: datetime,
) -> RotatedSecrets:
    """New secrets, the old inbound one valid for `grace_period` (ISO 8601), audited.

    Raises durations.DurationError, before anything changes, unless `grace_period` is a
    duration of zero or more; the caller commits.
    """
    durations.parse(grace_period, allow_zero=True)
    grace = durations.as_timedelta(grace_period)
    rotated = rotate_secrets(session, box, channel, grace, now)
    audit.record(
        session,
        actor,
        "channel.rotate",
        "channel",
        channel.slug,
        {"grace_period": grace_period},
    )
    return rotated


def send_test(
    session: Session, channel: Channel, actor: User | None, now: datetime
) -> Delivery:
    """A signed test action for the channel's normal delivery path, audited.

    The caller commits, then signals the channel's delivery drain (engine.execution.drains).
    """
    row = new_test_delivery(channel, now)
    session.add(row)
    session.flush()
    audit.record(
        session, actor, "channel.test", "channel", channel.slug, {"delivery": row.id}
    )
    return row


def describe_channel(channel: Channel) -> dict[str, object]:
    """The channel as the API shows it: never a secret."""
    return {
        "id": channel.id,
        "slug": channel.slug,
        "name": channel.name,
        "kind": channel.kind.value,
        "outbound_url": channel.outbound_url,
        "enabled": channel.enabled,
        "rate_limit": channel.rate_limit,
        "rotation_grace_until": channel.previous_inbound_expires_at.isoformat()
        if channel.previous_inbound_expires_at
        else None,
        "created_at": channel.created_at.isoformat(),
    }
