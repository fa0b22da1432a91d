"""Journeys as marketers make them: their life from draft to archive (lifecycle), how they read
(read), the checks before publishing (review), steps named in words (summaries), publish plans
for the customers already inside (plans, moves), and what the designer offers to start from
(starters, samples)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.language import graph


class JourneyError(ValueError):
    """A journey request that cannot be honoured.

    `status` is the HTTP-like answer it deserves (404, 409, 412, 422); `problems` lists the
    document's problems when that is why.
    """

    def __init__(
        self,
        status: int,
        message: str,
        problems: list[graph.Problem] | None = None,
        field: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.problems = problems or []
        self.field = field
