"""Customer profiles: who a customer is across channels (identity), what they allow and what
is forgotten on request (privacy), and how a profile reads on a page (read, timeline)."""

from __future__ import annotations


class CustomerError(ValueError):
    """A customer request that cannot be honoured; `status` is the HTTP-like answer."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field
