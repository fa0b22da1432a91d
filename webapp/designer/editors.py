"""The rule field of the side panel, and how edits inside a form are made.

Editors post under flat, indexed names (see rule_builder and row_fields) and are re-rendered
by the server on every edit: a button posts the form with `action` =
"<field name>|<verb>|<argument>", the view calls `apply_action`, and the panel comes back
with the change made and nothing saved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from wtforms import Field
from wtforms.utils import unset_value
from wtforms.validators import ValidationError

from engine.language import rules
from webapp.designer import rule_builder as rb


def posted_text(value: Any) -> str:
    """Posted text with the browser's CRLF line ends made plain newlines."""
    return (value or "").replace("\r\n", "\n")


def dom_id(name: str) -> str:
    """An element id for a posted name (`n-x-rule.0.1` -> `n-x-rule-0-1`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


class RuleEditor:
    """One rule being edited: as the builder's tree, or as JSON text."""

    def __init__(self, name: str, optional: bool = False) -> None:
        self.optional = optional
        self.name = name
        self.mode = "builder"
        self.root: rb.Group | None = None if optional else rb.new_root()
        self.text = ""
        self.note: str | None = None
        self.errors: list[str] = []
        self.rule: Any = None
        self.focus: str | None = None

    @property
    def id(self) -> str:
        return dom_id(self.name)

    def load(self, rule: Any) -> None:
        """Show a stored rule: in the builder when it can, else as JSON with the reason."""
        self.rule, self.errors, self.note = rule, [], None
        self.mode, self.text = "builder", ""
        if rule is None:
            self.root = None if self.optional else rb.new_root()
            return
        try:
            self.root = rb.from_rule(rule)
        except rb.Unshowable as error:
            self.mode, self.root = "json", None
            self.text = json.dumps(rule, indent=2)
            self.note = f"The builder cannot show this rule: {error}. Edit it as JSON."

    def read(self, formdata: Any) -> None:
        """Take the rule as posted."""
        self.mode = "json" if formdata.get(f"{self.name}.mode") == "json" else "builder"
        self.text = posted_text(formdata.get(f"{self.name}.json"))
        self.root = rb.parse(formdata, self.name) if self.mode == "builder" else None
        self._build()

    def _build(self) -> None:
        self.errors = []
        if self.mode == "json":
            self.rule = None
            if self.text.strip():
                try:
                    self.rule = json.loads(self.text)
                except json.JSONDecodeError as error:
                    self.errors.append(
                        f"This is not JSON: {error.msg} (line {error.lineno})"
                    )
            return
        self.rule = rb.to_rule(self.root)[0] if self.root is not None else None

    @property
    def invalid(self) -> bool:
        """True when something typed cannot be read (the engine's judgement aside)."""
        if self.errors:
            return True
        return (
            self.mode == "builder"
            and self.root is not None
            and rb.has_errors(self.root)
        )

    def problems(self) -> list[str]:
        """The engine's problems with the rule as it stands; in the builder they are also
        put on the condition or group they concern."""
        if self.mode == "builder" and self.root is not None:
            self.rule = rb.annotate(self.root)
            return []
        if self.mode == "json" and self.rule is not None:
            found = []
            for message in rules.check(self.rule, "rule"):
                message = message.removeprefix("rule").lstrip(":. ") or message
                found.append(message[:1].upper() + message[1:])
            return found
        return []

    def rename(self, name: str) -> None:
        self.name = name

    def apply(self, verb: str, argument: str) -> None:
        """Make one edit; `focus` names the element to put the keyboard on afterwards."""
        self.focus = None
        root = self.root
        if verb == "start" and root is None:
            self.mode, self.root = "builder", rb.new_root()
            self.focus = f"{self.id}-0-0-field"
        elif verb == "clear" and self.optional:
            self.mode, self.root, self.text = "builder", None, ""
            self.focus = f"{self.id}-start"
        elif verb == "to-json":
            # what cannot be read yet goes over as the text typed, to be fixed in JSON
            self._build()
            self.mode, self.root = "json", None
            self.text = "" if self.rule is None else json.dumps(self.rule, indent=2)
            self.focus = f"{self.id}-json"
        elif verb == "to-builder":
            self._to_builder()  # keeps its own errors: no rebuild after it
            return
        elif root is not None and verb in {"add-condition", "add-group"}:
            what: rb.Node = (
                rb.Condition()
                if verb == "add-condition"
                else rb.Group("all", [rb.Condition()])
            )
            path = rb.add(root, argument, what)
            if path:
                suffix = "-0" if verb == "add-group" else ""
                self.focus = f"{self.id}-{dom_id(path)}{suffix}-field"
        elif root is not None and verb == "remove":
            holder = rb.remove(root, argument)
            if holder == "0" and not root.members:
                if self.optional:
                    self.root, holder = None, None
                    self.focus = f"{self.id}-start"
                else:
                    root.members.append(rb.Condition())
            if holder:
                self.focus = f"{self.id}-{dom_id(holder)}-add"
        elif root is not None and verb == "op":
            rb.operator_changed(root, argument)
        self._build()

    def _to_builder(self) -> None:
        self._build()
        if self.errors:
            return
        if self.rule is None:
            self.mode, self.root = "builder", None if self.optional else rb.new_root()
        else:
            try:
                self.root = rb.from_rule(self.rule)
            except rb.Unshowable as error:
                self.errors.append(f"The builder cannot show this rule: {error}.")
                return
            self.mode = "builder"
        self.note = None
        self.focus = f"{self.id}-mode"

    def pairs(self) -> list[tuple[str, str]]:
        """What a browser posts for this editor (for tests and round trips)."""
        if self.mode == "json":
            return [(f"{self.name}.mode", "json"), (f"{self.name}.json", self.text)]
        return rb.fields(self.root, self.name)


class RuleField(Field):
    """A rule, edited in the rule builder (or as JSON). `optional`: the rule may be absent."""

    def __init__(
        self,
        label: str | None = None,
        validators: Iterable[Any] | None = None,
        optional: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, validators, **kwargs)
        self.editor = RuleEditor(self.name, optional)

    def process(
        self, formdata: Any, data: Any = unset_value, extra_filters: Any = None
    ) -> None:
        self.process_errors: list[str] = []
        if formdata is not None and f"{self.name}.mode" in formdata:
            self.editor.read(formdata)
        else:
            self.editor.load(None if data is unset_value else data)
        self.data = self.editor.rule

    def load(self, rule: Any) -> None:
        self.editor.load(rule)
        self.data = self.editor.rule

    def pre_validate(self, form: Any) -> None:
        if self.editor.errors:
            raise ValidationError(self.editor.errors[0])
        if self.editor.invalid:
            raise ValidationError("Fix the conditions marked below.")
        if self.data is None and not self.editor.optional:
            raise ValidationError("Add a condition.")

    def apply(self, target: str, verb: str, argument: str) -> bool:
        if target != self.name:
            return False
        self.editor.apply(verb, argument)
        self.data = self.editor.rule
        return True

    def attach(self, where: str, message: str) -> bool:
        """Whether a problem at `where` (relative to this field) is shown by the builder."""
        return (
            True  # the builder finds the rule's problems itself (RuleEditor.problems)
        )

    def focus(self) -> str | None:
        return self.editor.focus


def apply_action(form: Any, action: str) -> str | None:
    """Make the edit `action` ("<field name>|<verb>|<argument>") on the form's fields;
    returns the id of the element to focus afterwards."""
    target, _bar, rest = action.partition("|")
    verb, _bar, argument = rest.partition("|")
    for item in form:
        apply = getattr(item, "apply", None)
        if apply is not None and apply(target, verb, argument):
            focus: str | None = item.focus()
            return focus
    return None
