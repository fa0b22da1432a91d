from datetime import UTC, datetime

from engine import partitions
from engine.partitions import Part


def day(month, n, year=2026):
    return datetime(year, month, n, tzinfo=UTC)


def test_the_dates_partitions_cut_at():
    at = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert partitions.period_start(at, "month") == day(12, 1)
    assert partitions.period_after(day(12, 1), "month") == day(1, 1, 2027)
    assert partitions.period_start(at, "week") == day(12, 28)  # a Monday
    assert partitions.period_after(day(12, 28), "week") == day(1, 4, 2027)
    assert partitions.period_start(at, "day") == day(12, 31)
    assert list(partitions.periods(day(11, 15), day(2, 1, 2027), "month")) == [
        day(11, 1),
        day(12, 1),
        day(1, 1, 2027),
    ]


def test_only_what_no_partition_covers_is_made():
    existing = [
        Part("a", None, day(11, 1)),
        Part("b", day(12, 1), day(1, 1, 2027)),
        Part("d", None, None, default=True),
    ]
    assert partitions.gaps(day(10, 1), day(11, 1), existing) == []
    assert partitions.gaps(day(11, 1), day(12, 1), existing) == [
        (day(11, 1), day(12, 1))
    ]
    # a week across the end of a month partition keeps only its part after it
    assert partitions.gaps(day(12, 28), day(1, 4, 2027), existing) == [
        (day(1, 1, 2027), day(1, 4, 2027))
    ]
    assert partitions.gaps(day(10, 20), day(12, 10), existing) == [
        (day(11, 1), day(12, 1))
    ]


def test_partitions_are_told_from_the_tables_the_models_describe():
    assert partitions.is_partition("events_p20261201")
    assert partitions.is_partition("deliveries_default")
    assert not partitions.is_partition("events")
    assert not partitions.is_partition("event_keys")
    assert not partitions.is_partition("runs_p20261201")
