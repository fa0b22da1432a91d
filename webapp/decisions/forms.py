"""The decision table's form: rules as rows (outcome, values, a condition each, in order),
the default, and the test panel's sample."""

from __future__ import annotations

import json
from typing import Any

from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from engine.decisions import KEY, MAX_NAME, SCHEMA, VALUE_NAME
from engine.intake import payload
from webapp.designer.editors import dom_id
from webapp.designer.row_fields import RowsField
from webapp.forms import BaseForm

MAX_VALUE_LINES = 50


def read_values(text: str) -> tuple[dict[str, Any], str | None]:
    """`name: value` lines as values (a value that reads as JSON is taken as such: 4,
    true, "4"; anything else as text), and the first mistake in words."""
    found: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines()[: MAX_VALUE_LINES + 1], start=1):
        if not line.strip():
            continue
        if number > MAX_VALUE_LINES:
            return found, f"keep to {MAX_VALUE_LINES} values"
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not VALUE_NAME.match(name):
            return found, (
                f"line {number}: write each value as name: value, e.g. queue: vip "
                "(names are letters, digits or _)"
            )
        if name in found:
            return found, f"line {number}: {name} is given twice"
        try:
            parsed = json.loads(value, parse_constant=_no_constant)
            payload.check(parsed)  # 1e999 reads as infinity, which no JSON can hold
            found[name] = parsed
        except ValueError:
            found[name] = value  # text, including "NaN" and "Infinity" as words
    return found, None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def show_values(values: Any) -> str:
    """Values as the `name: value` lines `read_values` reads back unchanged."""
    if not isinstance(values, dict):
        return ""
    lines = []
    for name, value in values.items():
        shown = json.dumps(value, ensure_ascii=False)
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                shown = value  # plain text reads back as itself
        lines.append(f"{name}: {shown}")
    return "\n".join(lines)


class RulesField(RowsField):
    """The table's rules: an outcome, values and a condition each; the first that holds
    decides. Rows move up and down as well as being added and removed."""

    parts = ("outcome", "values")
    rule_part = "when"
    min_rows = 0

    def row_of(self, item: Any, data: Any) -> tuple[dict[str, str], Any]:
        item = item if isinstance(item, dict) else {}
        outcome = item.get("outcome")
        return {
            "outcome": outcome if isinstance(outcome, str) else "",
            "values": show_values(item.get("values")),
        }, item.get("when")

    def item_of(self, values: dict[str, str], rule: Any) -> Any:
        return {
            "when": rule,
            "outcome": values["outcome"].strip(),
            "values": read_values(values["values"])[0],
        }

    def check_rows(self) -> None:
        for row in self.rows:
            if not row.values["outcome"].strip():
                row.error("outcome", "Name the outcome, e.g. premium")
            error = read_values(row.values["values"])[1]
            if error:
                row.error("values", error[0].upper() + error[1:])

    def apply(self, target: str, verb: str, argument: str) -> bool:
        if target == self.name and verb in {"up", "down"}:
            if argument.isascii() and argument.isdigit() and len(argument) <= 9:
                index = int(argument)
                other = index - 1 if verb == "up" else index + 1
                if 0 <= index < len(self.rows) and 0 <= other < len(self.rows):
                    self.rows[index], self.rows[other] = (
                        self.rows[other],
                        self.rows[index],
                    )
                    self._renumber()
                    self.focus_id = dom_id(f"{self.name}.{other}.{verb}")
            self._collect()
            return True
        return super().apply(target, verb, argument)


class DecisionForm(BaseForm):
    revision = HiddenField()
    name = StringField(
        "Name", [DataRequired("Give the table a name."), Length(max=MAX_NAME)]
    )
    description = TextAreaField(
        "What it decides", [Optional(), Length(max=2000)], render_kw={"rows": 2}
    )
    rules = RulesField("Rules, tested in order: the first that holds decides")
    default_outcome = StringField(
        "Outcome", [DataRequired("Name the outcome when no rule holds, e.g. standard")]
    )
    default_values = TextAreaField("Values", [Optional()], render_kw={"rows": 3})

    def load(self, document: dict[str, Any], revision: int) -> None:
        self.revision.data = str(revision)
        self.name.data = document.get("name", "")
        self.description.data = document.get("description", "")
        self.rules.load(document.get("rules", []))
        default = document.get("default") or {}
        self.default_outcome.data = default.get("outcome", "")
        self.default_values.data = show_values(default.get("values"))

    def validate_default_values(self, field: Any) -> None:
        error = read_values(field.data or "")[1]
        if error:
            raise ValidationError(error[0].upper() + error[1:])

    def document(self, key: str) -> dict[str, Any]:
        """The table as the form holds it (the engine judges it: see engine.decisions)."""
        found: dict[str, Any] = {
            "schema": SCHEMA,
            "key": key,
            "name": (self.name.data or "").strip(),
        }
        if (self.description.data or "").strip():
            found["description"] = self.description.data.strip()
        found["rules"] = self.rules.data
        found["default"] = {
            "outcome": (self.default_outcome.data or "").strip(),
            "values": read_values(self.default_values.data or "")[0],
        }
        return found


class NewTableForm(BaseForm):
    name = StringField(
        "Name", [DataRequired("Give the table a name."), Length(max=MAX_NAME)]
    )
    key = StringField(
        "Key",
        [
            DataRequired("Give the table a key, e.g. support_tier"),
            Regexp(
                KEY.pattern,
                message="1 to 64 lower-case letters, digits or _, starting with a letter",
            ),
        ],
        description="How journeys and channels ask for it (/api/v1/decide/<key>); it "
        "cannot change later.",
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class TestForm(BaseForm):
    """Whom to test the rules on: a customer (or none), traits typed, what a channel knows."""

    customer = StringField("Customer", [Optional(), Length(max=300)])
    traits = TextAreaField("Traits (JSON)", [Optional()], render_kw={"rows": 3})
    context = TextAreaField("Context (JSON)", [Optional()], render_kw={"rows": 3})
