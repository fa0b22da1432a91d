"""The overview of every journey and the trend lines, from the counters only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from engine.analytics import queries
from engine.analytics.counters import Metric
from engine.analytics.queries import Window
from engine.analytics.reports import Uplift, against_holdout, rate
from engine.models import Journey


@dataclass
class JourneyLine:
    journey: Journey
    entered: int
    active: int
    converted: int
    cross_channel: int
    delivered: int = 0  # deliveries of its sends that reached their channel
    settled: int = 0  # deliveries of its sends settled: delivered, failed or suppressed

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.converted, self.entered)

    @property
    def delivered_nothing(self) -> bool:
        """Its sends were settled in the period and not one was delivered."""
        return self.settled > 0 and self.delivered == 0


@dataclass
class Overview:
    lines: list[JourneyLine]
    events: dict[str, int]
    entered: int  # over every journey, not only the lines shown
    converted: int
    cross_channel: int
    held_out: int = 0  # runs of customers in the global holdout, over every journey
    held_out_converted: int = 0

    @property
    def global_holdout(self) -> Uplift | None:
        """Every journey's runs against those of the global holdout."""
        return against_holdout(
            self.entered, self.converted, self.held_out, self.held_out_converted
        )

    @property
    def cross_channel_completion(self) -> float | None:
        """Runs that touched two or more channels and reached their goal, over runs entered."""
        return rate(self.cross_channel, self.entered)

    @property
    def context_retention(self) -> float | None:
        """Events whose customer was already known from another channel, over all events."""
        return rate(self.events.get("known", 0), sum(self.events.values()))


def overview(
    session: Session, journeys: list[Journey], window: Window | None = None
) -> Overview:
    """Headline figures of these journeys, and the cross-channel figures of every event."""
    wanted = (
        Metric.ENTERED,
        Metric.CONVERTED,
        Metric.CROSS_CHANNEL,
        Metric.HELD_OUT,
        Metric.HELD_OUT_CONVERTED,
    )
    dated = queries.by_journey(
        session, (*wanted, Metric.EVENT, Metric.DELIVERY), window or Window()
    )
    ever = queries.by_journey(session, (Metric.ENTERED, Metric.ENDED))

    def summed(
        source: dict[tuple[int, str, str], int], journey_id: int, metric: str
    ) -> int:
        return sum(
            v for (j, m, _), v in source.items() if j == journey_id and m == metric
        )

    lines = [
        JourneyLine(
            journey,
            entered=summed(dated, journey.id, Metric.ENTERED),
            active=max(
                summed(ever, journey.id, Metric.ENTERED)
                - summed(ever, journey.id, Metric.ENDED),
                0,
            ),
            converted=summed(dated, journey.id, Metric.CONVERTED),
            cross_channel=summed(dated, journey.id, Metric.CROSS_CHANNEL),
            delivered=dated.get((journey.id, Metric.DELIVERY, "delivered"), 0),
            settled=summed(dated, journey.id, Metric.DELIVERY),
        )
        for journey in journeys
    ]
    events = {
        label: value
        for (journey_id, metric, label), value in dated.items()
        if journey_id == 0 and metric == Metric.EVENT
    }
    every = {
        metric: sum(v for (j, m, _), v in dated.items() if j and m == metric)
        for metric in wanted
    }
    return Overview(
        lines,
        events,
        entered=every[Metric.ENTERED],
        converted=every[Metric.CONVERTED],
        cross_channel=every[Metric.CROSS_CHANNEL],
        held_out=every[Metric.HELD_OUT],
        held_out_converted=every[Metric.HELD_OUT_CONVERTED],
    )
