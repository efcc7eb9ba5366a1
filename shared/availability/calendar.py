"""Wall-clock rules (working hours, link availability) turned into windows of UTC instants."""

from __future__ import annotations

from collections.abc import Iterable

from .intervals import Interval, clip, merge
from .model import DAY_INDEX, AvailabilityRule, ProviderSchedule, parse_hhmm
from .timezones import boundary_instant, covering_ordinals, date_ordinal, inclusive_dates, weekday

MinuteRange = tuple[int, int]


def _wall_windows(zone_name: str, ranges_by_date: Iterable[tuple[int, list[MinuteRange]]]) -> list[Interval]:
    """Instants of wall-clock minute ranges on local dates, merged (also across midnight)."""
    return merge(
        (boundary_instant(zone_name, ordinal, first), boundary_instant(zone_name, ordinal, last))
        for ordinal, ranges in ranges_by_date
        for first, last in ranges
    )


def _schedule_ranges(schedule: ProviderSchedule, ordinals: range) -> Iterable[tuple[int, list[MinuteRange]]]:
    """The wall-clock working ranges of each local date in `ordinals`."""
    weekly: list[list[MinuteRange]] = [[] for _ in range(7)]
    for rule in schedule.weekly_rules:
        weekly[DAY_INDEX[rule.day_of_week]].append((parse_hhmm(rule.start_time), parse_hhmm(rule.end_time)))
    overrides = {
        date_ordinal(override.date): [
            (parse_hhmm(span.start_time), parse_hhmm(span.end_time)) for span in override.intervals
        ]
        for override in schedule.date_overrides
    }
    # Outside effective_from..effective_until there are no working hours, overrides included.
    for ordinal in inclusive_dates(ordinals, schedule.effective_from, schedule.effective_until):
        # An override replaces the weekday's rules for its date; an empty one is a day off.
        override = overrides.get(ordinal)
        yield ordinal, weekly[weekday(ordinal)] if override is None else override


def working_hours(schedule: ProviderSchedule, start: int, end: int) -> list[Interval]:
    """Merged, sorted working-hours windows of a provider (UTC seconds), clipped to [start, end)."""
    if end <= start:
        return []
    ordinals = covering_ordinals(schedule.time_zone, start, end)
    return clip(_wall_windows(schedule.time_zone, _schedule_ranges(schedule, ordinals)), start, end)


def ranked_windows(
    rules: list[AvailabilityRule], time_zone: str, start: int, end: int
) -> list[list[Interval]]:
    """Windows of every rank 1..highest (entry r - 1): rules of rank <= r, merged, clipped to [start, end)."""
    if end <= start or not rules:
        return []
    by_day: list[list[tuple[int, MinuteRange]]] = [[] for _ in range(7)]
    for rule in rules:
        minutes = (parse_hhmm(rule.start_time), parse_hhmm(rule.end_time))
        by_day[DAY_INDEX[rule.day_of_week]].append((rule.rank, minutes))
    rules_by_date = [
        (ordinal, by_day[weekday(ordinal)]) for ordinal in covering_ordinals(time_zone, start, end)
    ]
    levels: list[list[Interval]] = []
    # Rank r holds every rule of rank <= r, so each rank contains the one below (seed 000).
    for level in range(1, max(rule.rank for rule in rules) + 1):
        ranges = (
            (ordinal, [minutes for rank, minutes in day if rank <= level]) for ordinal, day in rules_by_date
        )
        levels.append(clip(_wall_windows(time_zone, ranges), start, end))
    return levels


def rank_windows(
    rules: list[AvailabilityRule], time_zone: str, rank: int, start: int, end: int
) -> list[Interval]:
    """Merged windows of a link's availability rules with rank <= `rank`, clipped to [start, end)."""
    levels = ranked_windows([rule for rule in rules if rule.rank <= rank], time_zone, start, end)
    return levels[-1] if levels else []
