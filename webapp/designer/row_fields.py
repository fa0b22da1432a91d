"""List editors of the side panel: a switch's cases, a message's fields, the journey's exit
events. Each row posts as <name>.<i>.<part>, with a rule of its own when it has one (see
editors.RuleEditor), and rows are added and removed through the same `action` round trip.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any

from wtforms import Field
from wtforms.utils import unset_value
from wtforms.validators import ValidationError

from webapp.designer.editors import RuleEditor, dom_id, posted_text

MAX_ROWS = 50


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


class RowsField(Field, ABC):
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
                        part: posted_text(formdata.get(self.part_name(index, part)))
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
            elif (
                verb == "remove"
                and argument.isascii()
                and argument.isdigit()
                and len(argument) <= 9
            ):
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

    @abstractmethod
    def row_of(self, item: Any, data: Any) -> tuple[dict[str, str], Any]:
        """A config item as a row: its text parts and its rule (or None)."""

    @abstractmethod
    def item_of(self, values: dict[str, str], rule: Any) -> Any:
        """A row as a config item."""

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

    def item_of(self, values: dict[str, str], rule: Any) -> Any:
        return values["name"].strip(), values["template"]

    def item_list(self) -> Any:
        """The message as one object of named templates; blank rows are left out."""
        return {
            name: text for name, text in super().item_list() if name or text.strip()
        }

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
