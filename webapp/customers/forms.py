"""Forms of the customers pages."""

from __future__ import annotations

from collections.abc import Sequence

from wtforms import SelectMultipleField
from wtforms.validators import InputRequired

from engine.profiles.read import ConsentSetting
from webapp.forms import BaseForm


class ConfirmForm(BaseForm):
    """A form with nothing but its CSRF token, for actions that only need a yes."""


class ConsentForm(BaseForm):
    """The consent switches: `channel` lists the switches shown, `allowed` those on.

    A switch left off sends nothing, so the form names every switch it showed; a channel
    added since the page was drawn is left as it is.
    """

    channel = SelectMultipleField(
        "Channels shown",
        validators=[InputRequired("send the channels whose switches were shown")],
    )
    allowed = SelectMultipleField("Channels allowed")

    def offer(self, settings: Sequence[ConsentSetting]) -> None:
        choices = [(s.channel, s.name) for s in settings]
        self.channel.choices = choices
        self.allowed.choices = choices

    def changes(self, settings: Sequence[ConsentSetting]) -> dict[str, bool]:
        """The switches whose position differs from what is stored."""
        shown = set(self.channel.data or [])
        allowed = set(self.allowed.data or [])
        return {
            s.channel: s.channel in allowed
            for s in settings
            if s.channel in shown and (s.channel in allowed) != s.allowed
        }
