"""Inputs of the availability engine: schedules, link and service rules, busy time."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import msgspec

DAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_INDEX: dict[str, int] = {name: index for index, name in enumerate(DAYS)}

_HHMM = re.compile(r"(\d{2}):(\d{2})")


@lru_cache(maxsize=4096)
def parse_hhmm(text: str) -> int:
    """Minutes since local midnight of a wall-clock "HH:MM" (00:00-23:59, or 24:00 = end of day)."""
    match = _HHMM.fullmatch(text)
    if match is None:
        raise ValueError(f"expected HH:MM, got {text!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if (hours, minutes) != (24, 0) and (hours > 23 or minutes > 59):
        raise ValueError(f"not a time of day: {text!r}")
    return hours * 60 + minutes


class TimeOfDayRange(msgspec.Struct, frozen=True, kw_only=True):
    """A wall-clock range of one day, "HH:MM" to "HH:MM" (24:00 = end of day)."""

    start_time: str
    end_time: str


class WeeklyRule(msgspec.Struct, frozen=True, kw_only=True):
    """Working hours on one day of every week, in the schedule's zone."""

    day_of_week: str
    start_time: str
    end_time: str


class DateOverride(msgspec.Struct, frozen=True, kw_only=True):
    """The working hours of one date, in place of its weekly rules."""

    date: str
    intervals: list[TimeOfDayRange] = []  # empty = a day off


class PublicBookings(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the provider's service slots are offered to the public (unauthenticated) slot query."""

    enabled: bool = False


def _weekdays_nine_to_five() -> list[WeeklyRule]:
    return [WeeklyRule(day_of_week=day, start_time="09:00", end_time="17:00") for day in DAYS[:5]]


class ProviderSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's working hours: weekly rules, date overrides and the dates they apply between."""

    time_zone: str = "Etc/UTC"
    weekly_rules: list[WeeklyRule] = msgspec.field(default_factory=_weekdays_nine_to_five)
    date_overrides: list[DateOverride] = []
    effective_from: str | None = None  # inclusive local date
    effective_until: str | None = None  # inclusive local date
    public_bookings: PublicBookings = msgspec.field(default_factory=PublicBookings)


class AvailabilityRule(msgspec.Struct, frozen=True, kw_only=True):
    """A window of a link's availability on one weekday; rank 1 is offered first, higher ranks add more."""

    day_of_week: str
    start_time: str
    end_time: str
    rank: int = 1


class Busy(NamedTuple):
    """A meeting [start, end) in UTC seconds plus its buffer zones before and after (seconds).

    Blocks, external busy times and holds are Busy with zero buffers.
    """

    start: int
    end: int
    buffer_before: int = 0
    buffer_after: int = 0


class HostCalendar(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine knows of one provider: schedule, busy time and the starts of its bookings."""

    provider_id: str
    schedule: ProviderSchedule
    busy: list[Busy]  # any order
    booking_starts: list[int] = []  # starts of confirmed events and appointments, for host assignment


class LinkRules(msgspec.Struct, frozen=True, kw_only=True):
    """A link's settings as the engine reads them: durations, step, buffers, notice, horizon, windows."""

    time_zone: str
    durations: list[int]  # minutes
    increment: int = 15  # minutes
    buffer_before: int = 0  # minutes
    buffer_after: int = 0  # minutes
    minimum_notice: int = 0  # minutes
    maximum_days_ahead: int = 60  # days of 24 elapsed hours
    availability: list[AvailabilityRule] = []
    host_mode: str = "any"  # "any" | "all"


class SlotRule(msgspec.Struct, frozen=True, kw_only=True):
    """When a service's slots begin: on these days, from start to end time, every `interval` minutes."""

    days_of_week: list[str]
    start_time: str
    end_time: str
    interval: int | None = None  # minutes; None = the service duration
    starts_on: str | None = None  # inclusive local date
    ends_on: str | None = None  # inclusive local date


class ServiceRules(msgspec.Struct, frozen=True, kw_only=True):
    """A service's settings as the engine reads them: duration, zone and slot rules."""

    duration: int  # minutes
    time_zone: str
    slot_rules: list[SlotRule]
