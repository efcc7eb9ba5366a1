"""Link slots materialised per link and UTC day, so a query for any window assembles days it already has.

A day's slots (`shared.availability.days.day_link_slots`) depend on the link, its hosts' calendars and
which holds still occupy time; not on the window or on `now` (the engine's notice and horizon are filters
applied when a window is assembled). An entry therefore holds while

* the link state is the one it was computed from (its StateCache serial, part of the key),
* every host's stamp for that day is unchanged (`LiveCalendars.day_stamp`): the in-memory calendars note,
  in the same no-await step that applies an event and in commit order, which UTC days of the provider it
  may move slots of (a reservation's or synced window's days with a margin that covers the longest
  duration and buffers; all days for a new schedule), so a query never sees a day computed before a
  booking it can see, and a booking leaves the other days of its host's links kept,
* `now` is before the first expiry of one of the hosts' holds at the time it was computed, and not before
  the moment it was computed (a clock stepped back may be before a hold expired: the day is computed again).

Each entry keeps the slots' JSON, so assembling a window is slicing and joining bytes. Memory is bounded
by bytes, not entries: a day of a link with a 1-minute increment and several durations holds thousands of
slots. Each entry's size is estimated (its JSON plus SLOT_OVERHEAD bytes of Python objects per slot, plus
ENTRY_OVERHEAD) and the least recently used entries go until the total is within the budget
(`Settings.query_days_bytes`, DEFAULT_BUDGET = 64 MiB). A day larger than the whole budget is used for its
answer and not kept. Worst case: the budget, plus the one day being assembled (a link's day may reach
1,440 starts times its durations, about 210 bytes a slot; 64 MiB keeps some 300,000 slots).
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

DEFAULT_BUDGET = 64 * 1024 * 1024  # bytes of kept days
# Per slot beyond its JSON: the bytes object's header (33) and the list's pointer (8), and two ints of the
# starts and ends (32 each, and a pointer each); per entry: the tuple, three lists, the key and the dict slot.
SLOT_OVERHEAD = 33 + 8 + 2 * (32 + 8)
ENTRY_OVERHEAD = 512
_encoder = msgspec.json.Encoder()


class DaySlots(NamedTuple):
    """One link's slots of one UTC day, and what they were computed from."""

    versions: tuple[int, ...]  # each host's day stamp (LiveCalendars.day_stamp)
    computed_at: int  # the `now` it was computed at: valid for no earlier `now`
    valid_until: float  # the first expiry of a host's hold after the moment they were computed
    starts: list[int]
    ends: list[int]
    last_end: int
    fragments: list[bytes]  # each slot as the reply's JSON object
    size: int  # estimated bytes kept


def entry_size(fragments: list[bytes]) -> int:
    """The estimated bytes a day's entry keeps: its JSON and the Python objects around it."""
    return ENTRY_OVERHEAD + sum(map(len, fragments)) + SLOT_OVERHEAD * len(fragments)


class LinkDays:
    """The per-day slot lists of links, over the query service's in-memory calendars."""

    def __init__(self, calendars: LiveCalendars, budget: int = DEFAULT_BUDGET) -> None:
        self.calendars = calendars
        self.budget = budget
        self.days: dict[tuple[int, int], DaySlots] = {}  # (link serial, UTC midnight) -> its slots, LRU first
        self.kept_bytes = 0  # the sum of the kept entries' sizes, at most `budget`
        self.computed = 0  # days computed (misses), for tests and the benchmark

    def answer(self, serial: int, link: LinkRules, host_ids: Sequence[str], now: int, start: int,
               end: int) -> bytes:
        """The JSON array of the window's slots: `link_slots` of the engine, from cached days where it can."""
        live = self.calendars
        earliest, _ = window_bounds(link, now, start, end)
        horizon = now + SECONDS_PER_DAY * link.maximum_days_ahead
        hosts: list[HostCalendar] | None = None
        parts: list[bytes] = []
        for day in window_days(link, now, start, end):
            key = (serial, day)
            entry = self.days.pop(key, None)  # re-inserted below: the dict's order is least recently used first
            if entry is not None:
                self.kept_bytes -= entry.size
            versions = tuple(live.day_stamp(h, day) for h in host_ids)
            if (entry is None or entry.versions != versions or now >= entry.valid_until
                    or now < entry.computed_at):
                if hosts is None:
                    hosts = live.host_calendars(host_ids, now)
                entry = self._compute(link, hosts, host_ids, versions, day, now)
            self._keep(key, entry)
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

    def _keep(self, key: tuple[int, int], entry: DaySlots) -> None:
        """Keep an entry as the most recently used, dropping the least recently used past the budget."""
        if entry.size > self.budget:
            return  # larger than everything kept may be: used for this answer only
        while self.days and self.kept_bytes + entry.size > self.budget:
            self.kept_bytes -= self.days.pop(next(iter(self.days))).size
        self.days[key] = entry
        self.kept_bytes += entry.size

    def _compute(self, link: LinkRules, hosts: list[HostCalendar], host_ids: Sequence[str],
                 versions: tuple[int, ...], day: int, now: int) -> DaySlots:
        self.computed += 1
        slots = day_link_slots(link, hosts, day)
        expiries = [t for h in host_ids if (t := self.calendars.holds_expiring(h, now)) is not None]
        fragments = [_encoder.encode({"start_at": iso_utc(s.start), "end_at": iso_utc(s.end),
                                      "duration": s.duration, "rank": s.rank}) for s in slots]
        return DaySlots(
            versions, now, min(expiries, default=float("inf")), [s.start for s in slots], [s.end for s in slots],
            max((s.end for s in slots), default=0), fragments, entry_size(fragments))
