"""Link slots by UTC day: what the query service materialises, and how a window is assembled from days.

`link_slots(link, hosts, now, start, end)` is the slots of the days the window touches, each day computed
on its own, filtered by the window, the notice and the horizon. That holds because nothing in a day's
slots depends on the window or on `now`:

* candidate starts are wall-clock times of each local date, the same whatever window asks for them;
* a slot [s, s + d) fits a free window clipped to [start, end) exactly when it fits the unclipped one
  and lies inside [start, end), so a day is computed over [day, day + 1 day + longest duration) and keeps
  the slots that start in the day;
* `now` enters the engine only as the earliest start (now + minimum_notice) and the latest one
  (now + maximum_days_ahead), two filters on the start applied when a window is assembled. (What is busy
  at `now`, an expired hold, is the caller's business: it builds the hosts at `now`.)

`tests/unit/test_day_slots.py` checks the equality over random links, windows, zones with DST days and
booking sequences.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from .engine import LinkSlot, link_slots
from .model import HostCalendar, LinkRules
from .timezones import SECONDS_PER_DAY

_UNBOUNDED_DAYS = 1_000_000  # a horizon no day reaches: each day's slots are computed without one


def day_of(instant: int) -> int:
    """The UTC midnight at or before `instant`."""
    return instant - instant % SECONDS_PER_DAY


def window_bounds(link: LinkRules, now: int, start: int, end: int) -> tuple[int, int]:
    """(earliest, latest) slot start of a window at `now`: the window, the notice and the horizon."""
    earliest = max(start, now, now + 60 * link.minimum_notice)
    latest = min(now + SECONDS_PER_DAY * link.maximum_days_ahead, end - 60 * min(link.durations, default=0))
    return earliest, latest


def window_days(link: LinkRules, now: int, start: int, end: int) -> range:
    """The UTC days (midnights) whose slots a window can hold, earliest first (empty when none)."""
    if not link.durations:
        return range(0)
    earliest, latest = window_bounds(link, now, start, end)
    if latest < earliest:
        return range(0)
    return range(day_of(earliest), day_of(latest) + 1, SECONDS_PER_DAY)


def day_link_slots(link: LinkRules, hosts: list[HostCalendar], day: int) -> list[LinkSlot]:
    """Every slot of the link starting in the UTC day [day, day + 1 day), by start, duration, rank, at any
    `now` before the day and for any window that holds the slot (see the module's docstring)."""
    if not link.durations:
        return []
    open_rules = msgspec.structs.replace(link, minimum_notice=0, maximum_days_ahead=_UNBOUNDED_DAYS)
    end = day + SECONDS_PER_DAY + 60 * max(link.durations)
    return [slot for slot in link_slots(open_rules, hosts, day, day, end) if slot.start < day + SECONDS_PER_DAY]


def assemble(link: LinkRules, days: Iterable[list[LinkSlot]], now: int, start: int, end: int) -> list[LinkSlot]:
    """The window's slots from the slots of its days (`window_days`, in order): `link_slots`' answer."""
    earliest, _ = window_bounds(link, now, start, end)
    horizon = now + SECONDS_PER_DAY * link.maximum_days_ahead
    return [slot for day in days for slot in day
            if earliest <= slot.start <= horizon and slot.end <= end]
