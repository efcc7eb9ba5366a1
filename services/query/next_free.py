"""The earliest-slot index: per service, time zone and day, each provider's next open slot, kept in order.

`earliest_slot` asks for the first public slot among a service's providers (all of them, or those named in
`provider_ids`). A group holds, for one service state (its StateCache serial, which names its rules and
blocks), one time zone and the local date the search starts on, every provider's first open slot and the
providers sorted by it; the answer is the first wanted provider in that order, so its cost does not grow
with the number of providers or with how far ahead the first free time lies.

A provider's entry is true until one of three things happens, and each is caught:

* its calendar or schedule changes: the in-memory calendars log every provider they change, in the
  no-await step that applies the event (`LiveCalendars.changed_since`); a group recomputes the providers
  changed since it last looked, before it answers;
* the slot starts (nothing before now is a slot) or one of the provider's holds expires (time it held is
  free again): the entry's last valid second, in a heap of the group;
* the day moves on, the service or its location changes: another group (the key changes);
* the clock steps back before the moment an entry was computed (a hold that had expired then occupies
  time again, and slots between the two moments were not looked at): the entry is computed again.

Memory is bounded by MAX_GROUPS groups and MAX_ENTRIES entries in all (everything is dropped, and rebuilt
on demand, past either).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from projections.calendars.memory import LiveCalendars
from shared.availability import Busy, ServiceRules
from shared.availability import service_slots as engine_service_slots

MAX_GROUPS = 512
MAX_ENTRIES = 200_000
_NEVER = float("inf")


class ServiceIndex:
    """One group: every provider's first open slot (None: none within the search) and the order of them."""

    __slots__ = ("entries", "expiring", "latest", "order", "seen")

    def __init__(self, seen: int) -> None:
        # provider -> (first open slot, last valid second, the `now` it was computed at)
        self.entries: dict[str, tuple[int | None, float, int]] = {}
        self.latest = 0  # the latest `now` an entry was computed at: a `now` before it finds stale entries
        self.order: list[tuple[int, str]] = []  # (first, provider) of the public providers that have one
        self.expiring: list[tuple[float, str]] = []  # heap of (last valid second, provider); stale items skipped
        self.seen = seen  # the calendars' change count the entries are up to date with


class NextFreeIndex:
    """Every group of the query service, over its in-memory calendars."""

    def __init__(self, calendars: LiveCalendars) -> None:
        self.calendars = calendars
        self.groups: dict[tuple[Any, ...], ServiceIndex] = {}
        self.entries = 0
        self.computed = 0  # providers computed (misses), for tests and the benchmark

    def clear(self) -> None:
        """Forget every group."""
        self.groups.clear()
        self.entries = 0

    def earliest(self, key: tuple[Any, ...], rules: ServiceRules, provider_ids: Sequence[str],
                 extra: dict[str, list[Busy]], zone_name: str, from_date: date, now: int,
                 wanted: set[str] | None) -> int | None:
        """The first open slot start of the public providers among `provider_ids` (those in `wanted` when
        given) from `now`, by the engine's rule (service_slots from `from_date`, 366 days, limit 1)."""
        group = self.groups.get(key)
        live = self.calendars
        if group is None:
            if len(self.groups) >= MAX_GROUPS or self.entries >= MAX_ENTRIES:
                self.clear()
            group = self.groups[key] = ServiceIndex(live.changes)
            stale: Iterable[str] = provider_ids
        else:
            changed = live.changed_since(group.seen)
            # more changes than the log keeps: look at everyone again
            stale = provider_ids if changed is None else [p for p in changed if p in group.entries]
            group.seen = live.changes
        if now < group.latest:  # the clock stepped back: entries computed after `now` are not true at `now`
            stale = {*stale, *(p for p, entry in group.entries.items() if entry[2] > now)}
            group.latest = now
        for provider_id in stale:
            self._compute(group, provider_id, rules, extra.get(provider_id, []), zone_name, from_date, now)
        while group.expiring and group.expiring[0][0] < now:
            until, provider_id = heapq.heappop(group.expiring)
            if group.entries[provider_id][1] == until:  # else a newer entry replaced it
                self._compute(group, provider_id, rules, extra.get(provider_id, []), zone_name, from_date, now)
        for first, provider_id in group.order:
            if wanted is None or provider_id in wanted:
                return first
        return None

    def _compute(self, group: ServiceIndex, provider_id: str, rules: ServiceRules, extra: list[Busy],
                 zone_name: str, from_date: date, now: int) -> None:
        old = group.entries.get(provider_id)
        if old is None:
            self.entries += 1
        elif old[0] is not None:
            del group.order[bisect_left(group.order, (old[0], provider_id))]
        self.computed += 1
        live = self.calendars
        provider = live.providers.get(provider_id)
        first: int | None = None
        if provider is not None and provider.schedule.public_bookings.enabled:
            hosts = live.host_calendars([provider_id], now, {provider_id: extra})
            result = engine_service_slots(rules, hosts, now, zone_name, from_date, None, 1)
            first = result.aggregated[0][0].start if result.aggregated else None
        expiring = live.holds_expiring(provider_id, now)
        # Open slots only go as time passes, except where a hold expires: the entry holds through `until`,
        # the last second at which its slot still starts at or after now and every hold still occupies.
        until = min(_NEVER if first is None else first, _NEVER if expiring is None else expiring - 1)
        group.entries[provider_id] = (first, until, now)
        group.latest = max(group.latest, now)
        if first is not None:
            insort(group.order, (first, provider_id))
        if until != _NEVER:
            if len(group.expiring) > 4 * len(group.entries):  # mostly replaced items: start the heap afresh
                group.expiring = [(u, p) for p, (_, u, _) in group.entries.items() if u != _NEVER]
                heapq.heapify(group.expiring)
            heapq.heappush(group.expiring, (until, provider_id))
