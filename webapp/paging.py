"""Paging for every list: a page of rows plus what the pager needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def requested_page() -> int:
    raw = request.args.get("page", "1")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        return 1
    return max(int(raw), 1)


def paginate(
    session: Session,
    statement: Select,  # type: ignore[type-arg]
    scalars: bool = True,
    size: int | None = None,
) -> Page:
    """Run `statement` for the page asked for in ?page=, counting every row it would return.

    With `scalars` the page holds the first column of each row, else whole rows; `size`
    overrides the configured page size (a short list inside a bigger page).
    """
    size = size or int(current_app.config["PAGE_SIZE"])
    number = requested_page()
    total = session.scalar(
        select(func.count()).select_from(statement.order_by(None).subquery())
    )
    total = int(total or 0)
    last = max(1, -(-total // size))
    number = min(number, last)
    window = statement.limit(size).offset((number - 1) * size)
    items = list(session.scalars(window) if scalars else session.execute(window))
    return Page(items=items, number=number, size=size, total=total)
