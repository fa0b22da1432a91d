"""The base form every form of the app derives from (CSRF comes from Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import FieldList, FormField


class BaseForm(FlaskForm):  # type: ignore[misc]
    """Shared behaviour for all forms: strip surrounding white space from text input."""

    class Meta:
        def bind_field(self, form, unbound_field, options):  # type: ignore[no-untyped-def]
            if issubclass(unbound_field.field_class, FieldList | FormField):
                # Fields that hold others take no filters; theirs apply.
                return unbound_field.bind(form=form, **options)
            filters = unbound_field.kwargs.get("filters", [])
            filters.append(
                lambda value: value.strip() if isinstance(value, str) else value
            )
            return unbound_field.bind(form=form, filters=filters, **options)
