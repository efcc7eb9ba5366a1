"""The reservation kernel: time taken on provider calendars (stream provider-<id>).

Every booking, hold and provider block takes time with `reserve`, frees it with `release` and moves
it with `move`; the events land on the providers' streams with the versions they were decided on,
so a concurrent booking of the same time conflicts, is re-decided, and finds the slot taken
(DESIGN.md section 3). `Calendar` is the fold of those events; what of it occupies the provider's
time is decided by shared.availability.occupancy, the rule the read side calls too.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from shared.availability import iso_utc, parse_instant
from shared.availability.occupancy import Occupancy, Reservation, occupancy
from shared.domain.core import provider_stream
from shared.messages.events import (
    Event,
    ExternalBusyTimesSynced,
    ReservationMoved,
    TimeReleased,
    TimeReserved,
)

NOT_A_SLOT = "is not an available slot"
PAST_MARGIN = 86_400  # a day: the longest buffer, and more than any zone's distance from UTC

Changes = list[tuple[str, list[Event]]]


class Calendar:
    """What occupies a provider's time. Mutable, but only ever changed on a private copy (see providers.fold)."""

    __slots__ = ("external", "reservations")

    def __init__(self, reservations: dict[str, Reservation] | None = None,
                 external: list[tuple[int, int]] | None = None) -> None:
        self.reservations: dict[str, Reservation] = dict(reservations or {})
        self.external: list[tuple[int, int]] = list(external or [])

    def copy(self) -> Calendar:
        """A private copy to apply events to."""
        return Calendar(self.reservations, self.external)

    def apply(self, event: Event) -> None:
        """Apply one calendar event (CALENDAR_EVENTS) in place."""
        match event:
            case TimeReserved():
                self.reservations[event.reservation_id] = Reservation(
                    event.reservation_id, event.kind, parse_instant(event.start_at), parse_instant(event.end_at),
                    event.buffer_before * 60, event.buffer_after * 60,
                    parse_instant(event.expires_at) if event.expires_at else None,
                )
            case TimeReleased():
                self.reservations.pop(event.reservation_id, None)
            case ReservationMoved():
                current = self.reservations.get(event.reservation_id)
                if current is not None:
                    self.reservations[event.reservation_id] = msgspec.structs.replace(
                        current, start=parse_instant(event.start_at), end=parse_instant(event.end_at))
            case ExternalBusyTimesSynced():
                self.external = replace_window(self.external, parse_instant(event.from_at),
                                               parse_instant(event.until_at),
                                               [(parse_instant(b.start_at), parse_instant(b.end_at))
                                                for b in event.busy_times])

    def occupancy(self, now: int, exclude: Iterable[str] = ()) -> Occupancy:
        """What occupies this calendar at `now` (shared.availability.occupancy), leaving out `exclude`.

        Time that ended more than a day ago is left out: no slot starts before now, and no buffer is
        longer than a day, so history never reaches the engine (its cost follows the future only).
        """
        return occupancy(self.reservations.values(), self.external, now, frozenset(exclude), now - PAST_MARGIN)


# The events a provider's calendar folds; every other provider event is the provider's own.
CALENDAR_EVENTS: tuple[type[Event], ...] = (TimeReserved, TimeReleased, ReservationMoved, ExternalBusyTimesSynced)


def replace_window(current: list[tuple[int, int]], start: int, end: int,
                   new: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`current` intervals outside [start, end) (cut at its edges) plus `new` clipped to it."""
    kept: list[tuple[int, int]] = []
    for a, b in current:
        if b <= start or a >= end:
            kept.append((a, b))
            continue
        if a < start:
            kept.append((a, start))
        if b > end:
            kept.append((end, b))
    kept.extend((max(a, start), min(b, end)) for a, b in new if min(b, end) > max(a, start))
    return sorted(kept)


def reserve(provider_ids: list[str], reservation_id: str, kind: str, start: int, end: int,
            buffer_before: int = 0, buffer_after: int = 0,
            expires_at: str | None = None) -> Changes:
    """Take [start, end) (and its buffer zones) on every provider's calendar for `reservation_id`."""
    return [(provider_stream(p), [TimeReserved(
        provider_id=p, reservation_id=reservation_id, kind=kind, start_at=iso_utc(start), end_at=iso_utc(end),
        buffer_before=buffer_before, buffer_after=buffer_after, expires_at=expires_at)]) for p in provider_ids]


def release(provider_ids: list[str], reservation_id: str) -> Changes:
    """Free the time `reservation_id` took on every provider's calendar."""
    return [(provider_stream(p), [TimeReleased(provider_id=p, reservation_id=reservation_id)])
            for p in provider_ids]


def move(provider_ids: list[str], reservation_id: str, start_at: str, end_at: str) -> Changes:
    """Move `reservation_id` to [start_at, end_at) on every provider's calendar, buffers kept."""
    return [(provider_stream(p), [ReservationMoved(provider_id=p, reservation_id=reservation_id,
                                                   start_at=start_at, end_at=end_at)])
            for p in provider_ids]


def merge_changes(changes: Changes) -> Changes:
    """One entry per stream, events in order (an append lists each stream once)."""
    merged: dict[str, list[Event]] = {}
    for stream_id, events in changes:
        merged.setdefault(stream_id, []).extend(events)
    return list(merged.items())
