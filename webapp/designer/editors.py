"""Form fields that edit structured parts of a journey: rules, a switch's cases, a message's
fields, the journey's exit events.

Each posts under flat, indexed names (see rule_builder) and is re-rendered by the server on
every edit: a button posts the form with `action` = "<field name>|<verb>|<argument>", the view
calls `apply_action`, and the panel comes back with the change made and nothing saved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any

from wtforms import Field
from wtforms.utils import unset_value
from wtforms.validators import ValidationError

from engine import rules
from webapp.designer import rule_builder as rb

MAX_ROWS = 50


def _text(value: Any) -> str:
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
        self.text = _text(formdata.get(f"{self.name}.json"))
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
        if self.mode == "json" and self.rule is not None and not self.errors:
            return [
                message.removeprefix("rule").lstrip(":. ") or message
                for message in rules.check(self.rule, "rule")
            ]
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
            self._build()
            if not self.invalid:
                self.mode = "json"
                self.text = "" if self.rule is None else json.dumps(self.rule, indent=2)
                self.focus = f"{self.id}-json"
        elif verb == "to-builder":
            self._to_builder()
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


# ---- rows: a list of items posted as <name>.<i>.<part> -------------------------------------


def _indices(formdata: Any, name: str) -> list[int]:
    pattern = re.compile(re.escape(name) + r"\.(\d+)\.")
    found = {
        int(match.group(1))
        for key in formdata.keys()
        if (match := pattern.match(key)) is not None
    }
    return sorted(found)[:MAX_ROWS]


@dataclass
class Row:
    """One item of a list field: its plain values, its rule if it has one, its errors."""

    values: dict[str, str]
    editor: RuleEditor | None = None
    errors: dict[str, list[str]] = default(default_factory=dict)

    def error(self, part: str, message: str) -> None:
        self.errors.setdefault(part, []).append(message)


class RowsField(Field):
    """A list of rows of plain text parts and, optionally, a rule each (`rule_part`).

    Subclasses say how a row reads from and writes to the config (`row_of`, `item_of`) and
    check their rows (`check_rows`).
    """

    parts: tuple[str, ...] = ()
    rule_part: str | None = None
    rule_optional = False
    min_rows = 0

    def __init__(
        self,
        label: str | None = None,
        validators: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, validators, **kwargs)
        self.rows: list[Row] = []
        self.focus_id: str | None = None

    # naming
    def part_name(self, index: int, part: str) -> str:
        return f"{self.name}.{index}.{part}"

    def part_id(self, index: int, part: str) -> str:
        return dom_id(self.part_name(index, part))

    def _new_row(self, values: dict[str, str] | None = None) -> Row:
        row = Row({part: "" for part in self.parts} | (values or {}))
        if self.rule_part:
            row.editor = RuleEditor("", self.rule_optional)
        return row

    def _renumber(self) -> None:
        for index, row in enumerate(self.rows):
            if row.editor is not None:
                row.editor.rename(self.part_name(index, self.rule_part or ""))

    # reading
    def process(
        self, formdata: Any, data: Any = unset_value, extra_filters: Any = None
    ) -> None:
        self.process_errors: list[str] = []
        if formdata is not None and f"{self.name}.present" in formdata:
            self.rows = []
            for index in _indices(formdata, self.name):
                row = self._new_row(
                    {
                        part: _text(formdata.get(self.part_name(index, part)))
                        for part in self.parts
                    }
                )
                if row.editor is not None:
                    row.editor.rename(self.part_name(index, self.rule_part or ""))
                    row.editor.read(formdata)
                self.rows.append(row)
            self._renumber()
        else:
            self.load(None if data is unset_value else data)
        self._collect()

    def load(self, data: Any) -> None:
        self.rows = []
        for item in data if isinstance(data, list | dict) else []:
            values, rule = self.row_of(item, data)
            row = self._new_row(values)
            if row.editor is not None:
                row.editor.load(rule)
            self.rows.append(row)
        while len(self.rows) < self.min_rows:
            self.rows.append(self._new_row())
        self._renumber()
        self._collect()

    def _collect(self) -> None:
        self.data = self.item_list()

    def item_list(self) -> Any:
        return [
            self.item_of(row.values, row.editor.rule if row.editor else None)
            for row in self.rows
        ]

    # editing
    def apply(self, target: str, verb: str, argument: str) -> bool:
        self.focus_id = None
        if target == self.name:
            if verb == "add" and len(self.rows) < MAX_ROWS:
                self.rows.append(self._new_row())
                self._renumber()
                self.focus_id = self.part_id(len(self.rows) - 1, self.parts[0])
            elif verb == "remove" and argument.isdigit():
                index = int(argument)
                if index < len(self.rows) and len(self.rows) > self.min_rows:
                    del self.rows[index]
                    self._renumber()
                    self.focus_id = dom_id(f"{self.name}.add")
            self._collect()
            return True
        for row in self.rows:
            if row.editor is not None and row.editor.name == target:
                row.editor.apply(verb, argument)
                self.focus_id = row.editor.focus
                self._collect()
                return True
        return False

    def focus(self) -> str | None:
        return self.focus_id

    def pre_validate(self, form: Any) -> None:
        for row in self.rows:
            row.errors = {}
        self.check_rows()
        bad = False
        for row in self.rows:
            editor = row.editor
            if editor is not None and editor.rule is None and not editor.optional:
                if not editor.errors:
                    editor.errors.append("Add a condition.")
            bad = bad or bool(row.errors) or (editor is not None and editor.invalid)
        if bad:
            raise ValidationError("Fix the parts marked below.")

    def attach(self, where: str, message: str) -> bool:
        """Show an engine problem at `where` (e.g. `[1].port`) on its row; False if not."""
        found = re.match(r"^\[(\d+)\]\.?([a-z_]*)", where)
        if not found or int(found.group(1)) >= len(self.rows):
            return False
        row, part = self.rows[int(found.group(1))], found.group(2)
        if part == self.rule_part:
            return True  # the rule builder shows its own problems
        row.error(part if part in self.parts else self.parts[0], message)
        return True

    # to define
    def row_of(self, item: Any, data: Any) -> tuple[dict[str, str], Any]:
        raise NotImplementedError

    def item_of(self, values: dict[str, str], rule: Any) -> Any:
        raise NotImplementedError

    def check_rows(self) -> None:
        """Put errors on rows (row.error) that the config cannot be written with."""

    def pairs(self) -> list[tuple[str, str]]:
        """What a browser posts for these rows (for tests and round trips)."""
        found = [(f"{self.name}.present", "1")]
        for index, row in enumerate(self.rows):
            found += [(self.part_name(index, p), row.values[p]) for p in self.parts]
            if row.editor is not None:
                found += row.editor.pairs()
        return found


class CasesField(RowsField):
    """A switch's cases: a port name and a rule each, tested in order."""

    parts = ("port",)
    rule_part = "rule"
    min_rows = 1

    def row_of(self, item: Any, data: Any) -> tuple[dict[str, str], Any]:
        item = item if isinstance(item, dict) else {}
        port = item.get("port")
        return {"port": port if isinstance(port, str) else ""}, item.get("rule")

    def item_of(self, values: dict[str, str], rule: Any) -> Any:
        return {"port": values["port"].strip(), "rule": rule}

    def check_rows(self) -> None:
        seen: set[str] = set()
        for row in self.rows:
            port = row.values["port"].strip()
            if not port:
                row.error("port", "Name the path this case takes, e.g. vip")
            elif port in seen:
                row.error("port", f"Two cases take the path {port!r}")
            seen.add(port)


class MessageField(RowsField):
    """A message's fields: a name and a Liquid template each (subject, text, ...)."""

    parts = ("name", "template")
    min_rows = 1

    def row_of(self, item: Any, data: Any) -> tuple[dict[str, str], Any]:
        value = data[item]
        text = value if isinstance(value, str) else json.dumps(value)
        return {"name": str(item), "template": text}, None

    def item_list(self) -> Any:
        return {
            row.values["name"].strip(): row.values["template"]
            for row in self.rows
            if row.values["name"].strip() or row.values["template"].strip()
        }

    def item_of(self, values: dict[str, str], rule: Any) -> Any:
        raise NotImplementedError  # item_list builds the object directly

    def check_rows(self) -> None:
        seen: set[str] = set()
        for row in self.rows:
            name = row.values["name"].strip()
            if not name and row.values["template"].strip():
                row.error("name", "Name this field, e.g. subject or text")
            elif name in seen:
                row.error("name", f"Two fields are called {name!r}")
            seen.add(name)

    def attach(self, where: str, message: str) -> bool:
        """A problem with `message.subject` goes on the row named subject."""
        name = where.lstrip(".")
        for row in self.rows:
            if name and row.values["name"].strip() == name:
                row.error("template", message)
                return True
        return False


class ExitsField(RowsField):
    """The journey's exit events: an event type and an optional rule each."""

    parts = ("event",)
    rule_part = "where"
    rule_optional = True

    def row_of(self, item: Any, data: Any) -> tuple[dict[str, str], Any]:
        item = item if isinstance(item, dict) else {}
        event = item.get("event")
        return {"event": event if isinstance(event, str) else ""}, item.get("where")

    def item_of(self, values: dict[str, str], rule: Any) -> Any:
        found: dict[str, Any] = {"event": values["event"].strip()}
        if rule is not None:
            found["where"] = rule
        return found

    def check_rows(self) -> None:
        for row in self.rows:
            if not row.values["event"].strip():
                row.error("event", "Name the event that ends the journey")


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
