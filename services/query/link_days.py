"""Link slots materialised per link and UTC day, so a query for any window assembles days it already has.

A day's slots (`shared.availability.days.day_link_slots`) depend on the link, its hosts' calendars and
which holds still occupy time; not on the window or on `now` (the engine's notice and horizon are filters
applied when a window is assembled). An entry therefore holds while

* the link state is the one it was computed from (its StateCache serial, part of the key),
* every host's calendar version is unchanged: the in-memory calendars bump a provider's version in the
  same no-await step that applies its events, in commit order, so a query never sees a day computed
  before a booking it can see,
* `now` is before the first expiry of one of the hosts' holds at the time it was computed.

Each entry keeps the slots' JSON, so assembling a window is slicing and joining bytes. Memory is bounded
by MAX_LINK_DAYS entries (least recently used go first); a day holds at most 96 starts per duration and
rank at the default increment, about 120 bytes each.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import NamedTuple

import msgspec

from projections.calendars.memory import LiveCalendars
from shared.availability import HostCalendar, LinkRules, iso_utc
from shared.availability.days import day_link_slots, window_bounds, window_days
from shared.availability.timezones import SECONDS_PER_DAY

MAX_LINK_DAYS = 2048
_encoder = msgspec.json.Encoder()


class DaySlots(NamedTuple):
    """One link's slots of one UTC day, and what they were computed from."""

    versions: tuple[int, ...]  # each host's calendar version
    valid_until: float  # the first expiry of a host's hold after the moment they were computed
    starts: list[int]
    ends: list[int]
    last_end: int
    fragments: list[bytes]  # each slot as the reply's JSON object


class LinkDays:
    """The per-day slot lists of links, over the query service's in-memory calendars."""

    def __init__(self, calendars: LiveCalendars, size: int = MAX_LINK_DAYS) -> None:
        self.calendars = calendars
        self.size = size
        self.days: dict[tuple[int, int], DaySlots] = {}  # (link serial, UTC midnight) -> its slots
        self.computed = 0  # days computed (misses), for tests and the benchmark

    def answer(self, serial: int, link: LinkRules, host_ids: Sequence[str], now: int, start: int,
               end: int) -> bytes:
        """The JSON array of the window's slots: `link_slots` of the engine, from cached days where it can."""
        live = self.calendars
        versions = tuple(live.version(h) for h in host_ids)
        earliest, _ = window_bounds(link, now, start, end)
        horizon = now + SECONDS_PER_DAY * link.maximum_days_ahead
        hosts: list[HostCalendar] | None = None
        parts: list[bytes] = []
        for day in window_days(link, now, start, end):
            key = (serial, day)
            entry = self.days.pop(key, None)  # re-inserted below: the dict's order is least recently used first
            if entry is None or entry.versions != versions or now >= entry.valid_until:
                if hosts is None:
                    hosts = live.host_calendars(host_ids, now)
                entry = self._compute(link, hosts, host_ids, versions, day, now)
            if len(self.days) >= self.size:
                del self.days[next(iter(self.days))]
            self.days[key] = entry
            if not entry.starts:
                continue
            if entry.starts[0] >= earliest and entry.starts[-1] <= horizon and entry.last_end <= end:
                parts.append(b",".join(entry.fragments))
                continue
            first, last = bisect_left(entry.starts, earliest), bisect_right(entry.starts, horizon)
            ends, fragments = entry.ends, entry.fragments
            kept = b",".join([fragments[k] for k in range(first, last) if ends[k] <= end])
            if kept:
                parts.append(kept)
        return b"[" + b",".join(parts) + b"]"

    def _compute(self, link: LinkRules, hosts: list[HostCalendar], host_ids: Sequence[str],
                 versions: tuple[int, ...], day: int, now: int) -> DaySlots:
        self.computed += 1
        slots = day_link_slots(link, hosts, day)
        expiries = [t for h in host_ids if (t := self.calendars.holds_expiring(h, now)) is not None]
        return DaySlots(
            versions, min(expiries, default=float("inf")), [s.start for s in slots], [s.end for s in slots],
            max((s.end for s in slots), default=0),
            [_encoder.encode({"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration,
                              "rank": s.rank}) for s in slots])
