"""Link slots and service slots (DESIGN.md section 3): candidate starts swept against free windows.

Per host, the windows of a rank minus the zones its busy time occupies leave free windows;
a candidate start c is a slot of duration d when [c, c + d) fits inside one of them. Busy
time is sorted and merged once per host, candidates are found by bisection, so the cost grows
with windows + busy + slots, never with candidates x busy.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import NamedTuple

from .calendar import ranked_windows, working_hours
from .intervals import Interval, fitting_starts, merge, subtract
from .model import DAY_INDEX, Busy, HostCalendar, LinkRules, ServiceRules, parse_hhmm
from .timezones import (
    MINUTES_PER_DAY,
    SECONDS_PER_DAY,
    boundary_instant,
    covering_ordinals,
    inclusive_dates,
    local_ordinal,
    wall_starts,
    weekday,
)


class LinkSlot(NamedTuple):
    """A link slot [start, end) in UTC seconds, with its duration and the availability rank it comes from."""

    start: int
    end: int
    duration: int  # minutes
    rank: int


class ServiceSlot(NamedTuple):
    """A service slot [start, end) in UTC seconds."""

    start: int
    end: int


class ProviderSlots(NamedTuple):
    """The service slots one provider is free for."""

    provider_id: str
    open: list[ServiceSlot]


class ServiceSlotsResult(NamedTuple):
    """Service slots: each with how many providers are free for it, and the slots of each provider."""

    aggregated: list[tuple[ServiceSlot, int]]  # (slot, number of providers free for it)
    providers: list[ProviderSlots]


def _occupied_zones(
    busy: Iterable[Busy], own_before: int, own_after: int, start: int, end: int
) -> list[Interval]:
    """Merged zones that a free candidate's meeting time [c, c + d) must not overlap.

    Its meeting may not overlap another meeting or that meeting's buffer zones:
    [s - buffer_before, e + buffer_after). Its own buffer zones may not overlap another
    meeting, i.e. [c - own_before, c + d + own_after) misses [s, e), which holds exactly when
    [c, c + d) misses [s - own_after, e + own_before). Zones that miss [start, end) cannot
    touch a slot in that range and are left out.
    """
    zones: list[Interval] = []
    for item in busy:
        if item.start < item.end:
            # Both zones contain the meeting itself, so together they are one interval.
            zones.append(
                (
                    item.start - max(item.buffer_before, own_after),
                    item.end + max(item.buffer_after, own_before),
                )
            )
        else:
            # An empty meeting keeps its buffer zones but gives the candidate's buffers nothing to overlap.
            zones.append((item.start - item.buffer_before, item.start))
            zones.append((item.end, item.end + item.buffer_after))
    return merge(zone for zone in zones if zone[1] > start and zone[0] < end)


def _link_grid(link: LinkRules, start: int, end: int) -> list[int]:
    """Candidate starts in [start, end): wall-clock 00:00 + k * increment of each local date."""
    grid: list[int] = []
    for ordinal in covering_ordinals(link.time_zone, start, end):
        grid.extend(wall_starts(link.time_zone, ordinal, 0, MINUTES_PER_DAY, link.increment))
    # First occurrences of increasing wall times are increasing instants, so the grid is sorted.
    return grid[bisect_left(grid, start) : bisect_left(grid, end)]


def _link_slot_starts(
    link: LinkRules, hosts: list[HostCalendar], now: int, start: int, end: int, durations: list[int]
) -> dict[tuple[int, int], set[int]]:
    """Slot starts in [start, end) keyed by (duration, rank), combined over hosts per host_mode."""
    combined: dict[tuple[int, int], set[int]] = {}
    if not hosts or not durations or end <= start:
        return combined
    grid = _link_grid(link, start, end)
    # The link's own rules are the same windows for every host; without rules each host
    # brings its working hours as the only rank.
    link_windows = (
        ranked_windows(link.availability, link.time_zone, start, end) if link.availability else None
    )
    earliest = max(start, now, now + 60 * link.minimum_notice)
    horizon = now + SECONDS_PER_DAY * link.maximum_days_ahead
    for index, host in enumerate(hosts):
        windows_by_rank = (
            link_windows if link_windows is not None else [working_hours(host.schedule, start, end)]
        )
        zones = _occupied_zones(host.busy, 60 * link.buffer_before, 60 * link.buffer_after, start, end)
        for rank, windows in enumerate(windows_by_rank, start=1):
            free = subtract(windows, zones)
            for duration in durations:
                length = 60 * duration
                found = fitting_starts(grid, free, length, earliest, min(horizon, end - length))
                key = (duration, rank)
                if index == 0:
                    combined[key] = set(found)
                elif link.host_mode == "all":
                    combined[key].intersection_update(found)
                else:
                    combined[key].update(found)
    return combined


def link_slots(link: LinkRules, hosts: list[HostCalendar], now: int, start: int, end: int) -> list[LinkSlot]:
    """Every (start, duration, rank) slot of a link inside [start, end), ordered by start, duration, rank."""
    starts_by_key = _link_slot_starts(link, hosts, now, start, end, sorted(set(link.durations)))
    slots = [
        LinkSlot(slot_start, slot_start + 60 * duration, duration, rank)
        for (duration, rank), starts in starts_by_key.items()
        for slot_start in starts
    ]
    # end = start + duration, so tuple order is start, duration, rank.
    slots.sort()
    return slots


def free_hosts(
    link: LinkRules, hosts: list[HostCalendar], now: int, slot_start: int, duration: int
) -> list[str]:
    """Ids (sorted) of the hosts for which (slot_start, duration) is a slot at some rank."""
    if duration not in link.durations:
        return []
    slot_end = slot_start + 60 * duration
    return sorted(
        host.provider_id
        for host in hosts
        if any(
            slot_start in starts
            for starts in _link_slot_starts(link, [host], now, slot_start, slot_end, [duration]).values()
        )
    )


def is_link_slot(
    link: LinkRules, hosts: list[HostCalendar], now: int, slot_start: int, duration: int
) -> bool:
    """Whether (slot_start, duration) is a slot of the link now: the check before booking it."""
    free = free_hosts(link, hosts, now, slot_start, duration)
    if link.host_mode == "all":
        return bool(hosts) and len(free) == len(hosts)
    return bool(free)


def choose_host(link: LinkRules, hosts: list[HostCalendar], candidate_ids: list[str], slot_start: int) -> str:
    """The candidate with the fewest bookings starting on slot_start's local date; ties: smallest id."""
    day = local_ordinal(link.time_zone, slot_start)
    candidates = set(candidate_ids)
    bookings_that_day = Counter(
        host.provider_id
        for host in hosts
        if host.provider_id in candidates
        for booking_start in host.booking_starts
        if local_ordinal(link.time_zone, booking_start) == day
    )
    return min(candidate_ids, key=lambda provider_id: (bookings_that_day[provider_id], provider_id))


def _service_candidates(service: ServiceRules, start: int, end: int) -> list[int]:
    """Sorted starts in [start, end) given by the slot rules: start_time + k * interval < end_time."""
    found: set[int] = set()
    ordinals = covering_ordinals(service.time_zone, start, end)
    for rule in service.slot_rules:
        days = {DAY_INDEX[day] for day in rule.days_of_week}
        first_minute, end_minute = parse_hhmm(rule.start_time), parse_hhmm(rule.end_time)
        step = service.duration if rule.interval is None else rule.interval
        for ordinal in inclusive_dates(ordinals, rule.starts_on, rule.ends_on):
            if weekday(ordinal) in days:
                found.update(wall_starts(service.time_zone, ordinal, first_minute, end_minute, step))
    return sorted(instant for instant in found if start <= instant < end)


def _service_open_starts(
    service: ServiceRules,
    providers: list[HostCalendar],
    now: int,
    time_zone: str,
    first_ordinal: int,
    last_ordinal: int,
) -> list[list[int]]:
    """Per provider, the open slot starts whose local date in `time_zone` is first..last."""
    range_start = boundary_instant(time_zone, first_ordinal, 0)
    range_end = boundary_instant(time_zone, last_ordinal + 1, 0)
    # A fall-back across midnight can give instants just after range_end an earlier local
    # date, so look one day further and decide membership by each start's own local date.
    candidates = [
        instant
        for instant in _service_candidates(service, range_start, range_end + SECONDS_PER_DAY)
        if first_ordinal <= local_ordinal(time_zone, instant) <= last_ordinal
    ]
    if not candidates:
        return [[] for _ in providers]
    length = 60 * service.duration
    horizon = candidates[-1] + length
    open_starts: list[list[int]] = []
    for provider in providers:
        windows = working_hours(provider.schedule, range_start, horizon)
        zones = _occupied_zones(provider.busy, 0, 0, range_start, horizon)
        open_starts.append(fitting_starts(candidates, subtract(windows, zones), length, now, horizon))
    return open_starts


def service_slots(
    service: ServiceRules,
    providers: list[HostCalendar],
    now: int,
    time_zone: str,
    from_date: date,
    until_date: date | None,
    limit: int | None,
) -> ServiceSlotsResult:
    """Open slots of a service per provider and aggregated, for local dates from..until in `time_zone`.

    `limit` keeps the first N aggregated times (searching 365 days past from_date when
    until_date is None) and the provider lists then hold only those times.
    """
    if until_date is None and limit is None:
        raise ValueError("until_date or limit is required")
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    if not providers:
        return ServiceSlotsResult(aggregated=[], providers=[])
    first = from_date.toordinal()
    last = first + 365 if until_date is None else until_date.toordinal()
    open_starts: list[list[int]] = [[] for _ in providers]
    # With a limit, search in growing chunks of dates and stop once the first N are certain.
    span = last - first + 1 if limit is None else 7
    chunk_first = first
    while chunk_first <= last:
        chunk_last = min(last, chunk_first + span - 1)
        chunk = _service_open_starts(service, providers, now, time_zone, chunk_first, chunk_last)
        for found, more in zip(open_starts, chunk, strict=True):
            found.extend(more)
        chunk_first, span = chunk_last + 1, span * 2
        if limit is not None and chunk_first <= last:
            times = sorted(set().union(*open_starts))
            # Every later chunk's slot starts at or after its first date's first instant.
            if len(times) >= limit and times[limit - 1] < boundary_instant(time_zone, chunk_first, 0):
                break
    free_count = Counter(instant for found in open_starts for instant in found)
    length = 60 * service.duration
    # One slot object per kept time, shared by the aggregated list and the provider lists.
    kept = {instant: ServiceSlot(instant, instant + length) for instant in sorted(free_count)[:limit]}
    return ServiceSlotsResult(
        aggregated=[(slot, free_count[instant]) for instant, slot in kept.items()],
        providers=[
            ProviderSlots(provider.provider_id, [kept[instant] for instant in found if instant in kept])
            for provider, found in zip(providers, open_starts, strict=True)
        ],
    )


def service_free_providers(
    service: ServiceRules, providers: list[HostCalendar], now: int, slot_start: int
) -> list[str]:
    """Ids (in the given order) of the providers for whom slot_start is an open slot of the service now."""
    day = date.fromordinal(local_ordinal(service.time_zone, slot_start))
    result = service_slots(service, providers, now, service.time_zone, day, day, None)
    return [
        entry.provider_id
        for entry in result.providers
        if any(slot.start == slot_start for slot in entry.open)
    ]


def is_service_slot(service: ServiceRules, provider: HostCalendar, now: int, slot_start: int) -> bool:
    """Whether slot_start is an open slot of the service with this provider now: the booking check."""
    return bool(service_free_providers(service, [provider], now, slot_start))
