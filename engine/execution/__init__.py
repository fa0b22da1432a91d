"""Execution: stored events applied to runs, durably.

A drain (drains) takes a partition's pending events in batches (apply), reading ahead what a
batch needs (batch); identity is resolved (engine.profiles), then `runner.on_event` decides
what the event does and live_runs carries it out on the runs in SQL: a run's saved state
(persist) is advanced by the pure runner and what it did is written (writes: steps, deliveries,
conversions) through step rows inserted in bulk (steps). Timers wake waiting runs (timers);
Redis flags and locks coordinate the drains (signals). Simulation (simulate) drives the same
runner on a virtual clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Effects:
    """What a transaction of engine work asks for once it commits."""

    delivery_channels: set[int] = field(default_factory=set)
    webhook_deliveries: bool = False
    runs_advanced: int = 0
    # Deliveries leased to the drain that made them, to send once it commits: (row, the
    # channel, the customer's consent, the run's version), made into claims by
    # engine.delivery.claim.leased.
    leased: list[tuple[dict[str, Any], Any, dict[str, Any], int]] = field(
        default_factory=list
    )
