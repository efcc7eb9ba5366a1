"""Wall clock <-> UTC epoch seconds in IANA zones, with the DST rules of DESIGN.md section 3.

A wall-clock time that happens twice (fall back) means its first occurrence. One that does not
exist (spring forward) is never a slot start, and as a window boundary it means the first
instant after the gap. Conversions are cached per (zone, local date) because the engine asks
for the same days over and over.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTES_PER_DAY = 1440
SECONDS_PER_DAY = 86400


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of an IANA name (cached; raises for an unknown name)."""
    return ZoneInfo(name)


def is_valid_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this machine knows."""
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _utc_offset(tz: ZoneInfo, instant: int) -> timedelta:
    offset = datetime.fromtimestamp(instant, tz).utcoffset()
    if offset is None:
        raise ValueError(f"{tz.key} has no UTC offset at {instant}")
    return offset


def _wall_instant(tz: ZoneInfo, wall: datetime) -> tuple[int, bool]:
    """(instant, exists) for a naive wall time: its first occurrence, or the end of its gap."""
    # fold=0 picks the earlier offset: the first occurrence of a repeated time.
    first = int(wall.replace(tzinfo=tz).timestamp())
    if datetime.fromtimestamp(first, tz).replace(tzinfo=None) == wall:
        return first, True
    # A time in a gap: fold=0 applies the offset from before the jump (an instant after the
    # transition), fold=1 the offset after it (an instant before). The transition lies in
    # (before, after]; bisect for the first instant that already has the new offset.
    before, after = int(wall.replace(tzinfo=tz, fold=1).timestamp()), first
    new_offset = _utc_offset(tz, after)
    while after - before > 1:
        middle = (before + after) // 2
        if _utc_offset(tz, middle) == new_offset:
            after = middle
        else:
            before = middle
    return after, False


class LocalDay(NamedTuple):
    """One local date of a zone as instants."""

    midnight: int  # local 00:00 (the end of the gap if midnight is skipped)
    next_midnight: int  # local 24:00, i.e. 00:00 of the next date
    regular: bool  # 00:00 exists and the offset holds all day: wall minute m is midnight + 60 * m


@lru_cache(maxsize=65536)
def local_day(zone_name: str, ordinal: int) -> LocalDay:
    """The instants bounding local date `ordinal` (proleptic Gregorian ordinal) in a zone."""
    tz = zone(zone_name)
    midnight, exists = _wall_instant(tz, datetime.fromordinal(ordinal))
    next_midnight, _ = _wall_instant(tz, datetime.fromordinal(ordinal + 1))
    # No IANA zone changes its offset twice within one day, so equal offsets at both ends of
    # the day mean no transition inside it.
    regular = exists and _utc_offset(tz, midnight) == _utc_offset(tz, next_midnight - 1)
    return LocalDay(midnight, next_midnight, regular)


@lru_cache(maxsize=65536)
def _irregular_wall(zone_name: str, ordinal: int, minute: int) -> tuple[int, bool]:
    return _wall_instant(zone(zone_name), datetime.fromordinal(ordinal) + timedelta(minutes=minute))


def boundary_instant(zone_name: str, ordinal: int, minute: int) -> int:
    """A window boundary at wall minute 0..1440 of a local date; a skipped time moves past the gap."""
    day = local_day(zone_name, ordinal)
    if minute == MINUTES_PER_DAY:
        return day.next_midnight
    if day.regular:
        return day.midnight + 60 * minute
    return _irregular_wall(zone_name, ordinal, minute)[0]


def start_instant(zone_name: str, ordinal: int, minute: int) -> int | None:
    """A slot start at wall minute 0..1439 of a local date; None when that wall time is skipped."""
    day = local_day(zone_name, ordinal)
    if day.regular:
        return day.midnight + 60 * minute
    instant, exists = _irregular_wall(zone_name, ordinal, minute)
    return instant if exists else None


@lru_cache(maxsize=16384)
def wall_starts(
    zone_name: str, ordinal: int, first_minute: int, end_minute: int, step: int
) -> tuple[int, ...]:
    """Instants of the existing wall times first_minute + k * step < end_minute on a local date."""
    day = local_day(zone_name, ordinal)
    if day.regular:
        return tuple(range(day.midnight + 60 * first_minute, day.midnight + 60 * end_minute, 60 * step))
    found = (start_instant(zone_name, ordinal, minute) for minute in range(first_minute, end_minute, step))
    return tuple(instant for instant in found if instant is not None)


def local_ordinal(zone_name: str, instant: int) -> int:
    """The local date (as an ordinal) of an instant in a zone."""
    return datetime.fromtimestamp(instant, zone(zone_name)).toordinal()


def covering_ordinals(zone_name: str, start: int, end: int) -> range:
    """Local dates whose wall-clock day may meet [start, end): one date of margin on each side."""
    return range(local_ordinal(zone_name, start) - 1, local_ordinal(zone_name, max(start, end - 1)) + 2)


def date_ordinal(iso_date: str) -> int:
    """The ordinal of a "YYYY-MM-DD" date."""
    return date.fromisoformat(iso_date).toordinal()


def inclusive_dates(ordinals: range, first: str | None, last: str | None) -> range:
    """The dates of `ordinals` inside the inclusive bounds first..last (None = unbounded)."""
    start = ordinals.start if first is None else max(ordinals.start, date_ordinal(first))
    stop = ordinals.stop if last is None else min(ordinals.stop, date_ordinal(last) + 1)
    return range(start, stop)


def weekday(ordinal: int) -> int:
    """0 = Monday ... 6 = Sunday."""
    return date.fromordinal(ordinal).weekday()


@lru_cache(maxsize=1 << 16)
def iso_utc(instant: int) -> str:
    """ "YYYY-MM-DDTHH:MM:SSZ" for an instant (cached: slot lists print the same instants again and again)."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1 << 16)
def iso_in_zone(instant: int, zone_name: str) -> str:
    """ISO-8601 with the zone's offset at that instant, e.g. "2025-03-10T09:00:00-04:00"."""
    return datetime.fromtimestamp(instant, zone(zone_name)).isoformat(timespec="seconds")


def parse_instant(text: str) -> int:
    """UTC epoch seconds of an ISO-8601 datetime that carries an offset or "Z" (ValueError otherwise)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"datetime without an offset: {text!r}")
    return int(moment.timestamp())
