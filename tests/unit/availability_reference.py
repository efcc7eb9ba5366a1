"""A brute-force reference for DESIGN.md section 3, written to be obviously right, not fast.

It walks every UTC minute of a stretch of time, converts each with zoneinfo, and checks each
rule literally. Every instant in the tests is a whole minute (and so is every UTC offset of
the zones used), so minutes are exact.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from zoneinfo import ZoneInfo

from shared.availability import Busy, HostCalendar, LinkRules, ProviderSchedule, ServiceRules

MINUTE = 60
DAY = 86400
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def utc_midnight(day: date) -> int:
    """Epoch seconds of 00:00 UTC on a date."""
    return (day.toordinal() - date(1970, 1, 1).toordinal()) * DAY


def minutes_of(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def at_minutes(day: date, minutes: int) -> datetime:
    """The naive wall-clock datetime `minutes` after 00:00 of `day` (1440 = next midnight)."""
    return datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """Half-open intervals share an instant (an empty interval shares none)."""
    return max(a_start, b_start) < min(a_end, b_end)


class LocalClock:
    """Every UTC minute of [first, last) with the wall-clock time it shows in one zone."""

    def __init__(self, zone_name: str, first: int, last: int) -> None:
        tz = ZoneInfo(zone_name)
        self.first, self.last = first, last
        self.walls = [datetime.fromtimestamp(t, tz).replace(tzinfo=None) for t in range(first, last, MINUTE)]
        seen: set[datetime] = set()
        self.first_occurrence: list[bool] = []
        for wall in self.walls:
            self.first_occurrence.append(wall not in seen)
            seen.add(wall)
        self.highest_so_far = list(accumulate(self.walls, max))

    def index(self, instant: int) -> int:
        assert self.first <= instant < self.last and instant % MINUTE == 0, instant
        return (instant - self.first) // MINUTE

    def wall(self, instant: int) -> datetime:
        return self.walls[self.index(instant)]

    def is_first_occurrence(self, instant: int) -> bool:
        return self.first_occurrence[self.index(instant)]

    def boundary(self, wall: datetime) -> int:
        """The first minute whose wall clock shows `wall` or later.

        For a time that happens twice that is its first occurrence; for a time inside a gap,
        the first instant after the gap.
        """
        position = bisect_left(self.highest_so_far, wall)
        assert 0 < position < len(self.walls), f"{wall} outside the walked range"
        return self.first + position * MINUTE

    def dates_around(self, start: int, end: int) -> list[date]:
        """Every local date from the day before `start` to the day after `end`."""
        first = self.wall(start - DAY).date()
        last = self.wall(end + DAY).date()
        return [first + timedelta(days=k) for k in range((last - first).days + 1)]


@lru_cache(maxsize=128)
def clock(zone_name: str, anchor: date) -> LocalClock:
    """The clock for tests whose instants lie within [anchor - 1 day, anchor + 5 days] UTC.

    The margin holds the day before and after each local date those instants touch, in
    every zone from UTC-5 to UTC+11.
    """
    origin = utc_midnight(anchor)
    return LocalClock(zone_name, origin - 4 * DAY, origin + 7 * DAY)


class MinuteSet:
    """Marked minutes of a clock's range, with O(1) "is every minute of [a, b) marked"."""

    def __init__(self, base: LocalClock, windows: Iterable[tuple[int, int]]) -> None:
        self.base = base
        marked = [0] * len(base.walls)
        for start, end in windows:
            for instant in range(start, end, MINUTE):
                marked[base.index(instant)] = 1
        self.marked = marked
        self.prefix = [0, *accumulate(marked)]

    def covers(self, start: int, end: int) -> bool:
        first, last = self.base.index(start), self.base.index(end - MINUTE) + 1
        return self.prefix[last] - self.prefix[first] == last - first

    def runs(self, start: int, end: int) -> list[tuple[int, int]]:
        """Maximal runs of marked minutes inside [start, end)."""
        found: list[tuple[int, int]] = []
        for instant in range(start, end, MINUTE):
            if self.marked[self.base.index(instant)]:
                if found and found[-1][1] == instant:
                    found[-1] = (found[-1][0], instant + MINUTE)
                else:
                    found.append((instant, instant + MINUTE))
        return found


def schedule_minutes(schedule: ProviderSchedule, anchor: date, start: int, end: int) -> MinuteSet:
    """The minutes of a provider's working hours on every local date around [start, end)."""
    local = clock(schedule.time_zone, anchor)
    windows = []
    for day in local.dates_around(start, end):
        if schedule.effective_from is not None and day < date.fromisoformat(schedule.effective_from):
            continue
        if schedule.effective_until is not None and day > date.fromisoformat(schedule.effective_until):
            continue
        overrides = [o for o in schedule.date_overrides if date.fromisoformat(o.date) == day]
        if overrides:
            ranges = [(i.start_time, i.end_time) for o in overrides for i in o.intervals]
        else:
            ranges = [
                (r.start_time, r.end_time)
                for r in schedule.weekly_rules
                if r.day_of_week == DAYS[day.weekday()]
            ]
        for start_time, end_time in ranges:
            windows.append(
                (
                    local.boundary(at_minutes(day, minutes_of(start_time))),
                    local.boundary(at_minutes(day, minutes_of(end_time))),
                )
            )
    return MinuteSet(local, windows)


def link_rule_minutes(link: LinkRules, rank: int, anchor: date, start: int, end: int) -> MinuteSet:
    """The minutes of a link's availability rules of rank <= `rank`."""
    local = clock(link.time_zone, anchor)
    windows = []
    for day in local.dates_around(start, end):
        for rule in link.availability:
            if rule.rank <= rank and rule.day_of_week == DAYS[day.weekday()]:
                windows.append(
                    (
                        local.boundary(at_minutes(day, minutes_of(rule.start_time))),
                        local.boundary(at_minutes(day, minutes_of(rule.end_time))),
                    )
                )
    return MinuteSet(local, windows)


def is_free(busy: list[Busy], start: int, end: int, own_before: int, own_after: int) -> bool:
    """The candidate [start, end) with its buffer zones against every busy item, literally."""
    for item in busy:
        if overlaps(start, end, item.start, item.end):
            return False
        if overlaps(start, end, item.start - item.buffer_before, item.start):
            return False
        if overlaps(start, end, item.end, item.end + item.buffer_after):
            return False
        if overlaps(start - own_before, start, item.start, item.end):
            return False
        if overlaps(end, end + own_after, item.start, item.end):
            return False
    return True


def reference_link_slots(
    link: LinkRules, hosts: list[HostCalendar], now: int, start: int, end: int, anchor: date
) -> list[tuple[int, int, int, int]]:
    """(start, end, duration, rank) of every link slot in [start, end), minute by minute."""
    if not hosts:
        return []
    local = clock(link.time_zone, anchor)
    if link.availability:
        highest = max(rule.rank for rule in link.availability)
        rule_sets = [link_rule_minutes(link, rank, anchor, start, end) for rank in range(1, highest + 1)]
        windows = {host.provider_id: rule_sets for host in hosts}
    else:
        highest = 1
        windows = {host.provider_id: [schedule_minutes(host.schedule, anchor, start, end)] for host in hosts}
    slots = []
    for instant in range(start, end, MINUTE):
        wall = local.wall(instant)
        minute_of_day = wall.hour * 60 + wall.minute
        if minute_of_day % link.increment != 0 or not local.is_first_occurrence(instant):
            continue
        if instant < now or instant < now + link.minimum_notice * MINUTE:
            continue
        if instant > now + link.maximum_days_ahead * DAY:
            continue
        for duration in sorted(set(link.durations)):
            slot_end = instant + duration * MINUTE
            if slot_end > end:
                continue
            for rank in range(1, highest + 1):
                verdicts = [
                    windows[host.provider_id][rank - 1].covers(instant, slot_end)
                    and is_free(
                        host.busy, instant, slot_end, link.buffer_before * MINUTE, link.buffer_after * MINUTE
                    )
                    for host in hosts
                ]
                if all(verdicts) if link.host_mode == "all" else any(verdicts):
                    slots.append((instant, slot_end, duration, rank))
    return sorted(slots)


def reference_service_slots(
    service: ServiceRules,
    providers: list[HostCalendar],
    now: int,
    time_zone: str,
    from_date: date,
    last_date: date,
    anchor: date,
) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """([(start, count)], per provider [start]) of every open slot whose local date is from..last."""
    requested = clock(time_zone, anchor)
    home = clock(service.time_zone, anchor)
    length = service.duration * MINUTE
    starts_in_range = [
        instant
        for instant in range(requested.first, requested.last - DAY, MINUTE)
        if from_date <= requested.wall(instant).date() <= last_date
    ]
    if not starts_in_range:
        return [], [[] for _ in providers]
    working = [
        schedule_minutes(provider.schedule, anchor, starts_in_range[0], starts_in_range[-1] + length)
        for provider in providers
    ]
    aggregated: list[tuple[int, int]] = []
    per_provider: list[list[int]] = [[] for _ in providers]
    for instant in starts_in_range:
        if instant < now or not home.is_first_occurrence(instant):
            continue
        wall = home.wall(instant)
        minute_of_day = wall.hour * 60 + wall.minute
        day = wall.date()
        begins_a_slot = False
        for rule in service.slot_rules:
            interval = service.duration if rule.interval is None else rule.interval
            if DAYS[day.weekday()] not in rule.days_of_week:
                continue
            if rule.starts_on is not None and day < date.fromisoformat(rule.starts_on):
                continue
            if rule.ends_on is not None and day > date.fromisoformat(rule.ends_on):
                continue
            first, last = minutes_of(rule.start_time), minutes_of(rule.end_time)
            if first <= minute_of_day < last and (minute_of_day - first) % interval == 0:
                begins_a_slot = True
        if not begins_a_slot:
            continue
        count = 0
        for index, provider in enumerate(providers):
            if working[index].covers(instant, instant + length) and is_free(
                provider.busy, instant, instant + length, 0, 0
            ):
                per_provider[index].append(instant)
                count += 1
        if count:
            aggregated.append((instant, count))
    return aggregated, per_provider
