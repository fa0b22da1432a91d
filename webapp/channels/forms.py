"""Forms of the channels pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wtforms import IntegerField, SelectChoice, SelectField, StringField, URLField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)

from engine.channels import (
    MAX_RATE_LIMIT,
    ChannelError,
    check_outbound_url,
    check_rate_limit,
    check_slug,
)
from engine.models import ChannelKind
from webapp.forms import BaseForm
from webapp.services import services

KIND_CHOICES = [
    SelectChoice(ChannelKind.web.value, "Web site"),
    SelectChoice(ChannelKind.app.value, "Mobile app"),
    SelectChoice(ChannelKind.email.value, "Email provider"),
    SelectChoice(ChannelKind.sms.value, "SMS provider"),
    SelectChoice(ChannelKind.chat.value, "Chat or chatbot"),
    SelectChoice(ChannelKind.store.value, "Point of sale"),
    SelectChoice(ChannelKind.support.value, "Support desk"),
    SelectChoice(ChannelKind.other.value, "Other"),
]

GRACE_CHOICES = [
    SelectChoice("PT0S", "None: the old secret stops working now"),
    SelectChoice("PT1H", "1 hour"),
    SelectChoice("P1D", "1 day"),
    SelectChoice("P7D", "7 days"),
]

RATE_HELP = f"Events per second this channel may post (1 to {MAX_RATE_LIMIT})."
URL_HELP = "Where Throughline POSTs this channel's actions, signed. Leave empty if it only sends events."


def _engine_check(check: Callable[[Any], None], value: Any) -> None:
    """Run one of engine.channels' checks, its ChannelError becoming the field's error."""
    try:
        check(value)
    except ChannelError as error:
        raise ValidationError(str(error)) from None


class ChannelSettingsForm(BaseForm):
    """What an admin may change on a channel at any time."""

    name = StringField("Name", validators=[Length(max=200)])
    outbound_url = URLField(
        "Outbound URL", validators=[Optional(), Length(max=2048)], description=URL_HELP
    )
    rate_limit = IntegerField(
        "Rate limit",
        default=100,
        validators=[InputRequired("give a whole number of events per second")],
        invalid_value_message="give a whole number of events per second",
        description=RATE_HELP,
    )

    # The engine's own checks, so every wrong field is named at once.
    def validate_outbound_url(self, field: URLField) -> None:
        networks = services().settings.outbound_allowed_networks
        _engine_check(lambda url: check_outbound_url(url, networks), field.data or None)

    def validate_rate_limit(self, field: IntegerField) -> None:
        if field.data is not None:
            _engine_check(check_rate_limit, field.data)


class NewChannelForm(ChannelSettingsForm):
    slug = StringField(
        "Slug",
        validators=[DataRequired("give the channel a slug"), Length(max=63)],
        description="Part of its webhook URL, for good: lower-case letters, digits and dashes.",
    )
    kind = SelectField("Kind", choices=KIND_CHOICES, default=ChannelKind.web.value)

    def validate_slug(self, field: StringField) -> None:
        _engine_check(check_slug, field.data or "")
        if field.data == "new":
            raise ValidationError(
                "“new” is the address of this page; choose another slug"
            )


class RotateForm(BaseForm):
    grace = SelectField(
        "Keep accepting the old inbound secret for",
        choices=GRACE_CHOICES,
        default="P1D",
    )


class ConfirmForm(BaseForm):
    """Nothing but the CSRF token, for actions that only need a yes."""
