"""What occupies a provider's time (DESIGN.md section 3): the one rule the command and the query side call.

The command side folds a provider's stream into reservations (shared.domain.reservations.Calendar); the
read side selects the same reservations from rm_reservations / rm_external_busy. Both turn them into
`Reservation` values and ask this module what occupies the provider at `now`, so they cannot disagree.
Canceled, declined, completed and abandoned bookings and holds are released from the calendar, so they
never reach it; an expired hold is still there until it is swept, and occupies nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import NamedTuple

import msgspec

from .model import Busy

EXTERNAL = "external"  # the kind of an external busy time among `occupants`
BOOKING_KINDS = frozenset({"event", "appointment"})  # what host assignment counts per local date
STARTS_MARGIN = 86_400  # booking starts reach a day further back than busy time: a local date lasts up to 25 h


class Reservation(msgspec.Struct, frozen=True, gc=False):
    """Time taken on a provider's calendar, in UTC seconds (buffers in seconds too).

    A Struct rather than a NamedTuple: the read side builds one per row of a slot query, and a Struct
    costs a fifth as much to build.
    """

    reservation_id: str  # "" for an external busy time
    kind: str  # "event" | "appointment" | "hold" | "block" (| EXTERNAL among occupants)
    start: int
    end: int
    buffer_before: int = 0
    buffer_after: int = 0
    expires_at: int | None = None  # holds only


class Occupancy(NamedTuple):
    """The engine's view of one provider: its busy time and its booking starts (HostCalendar's fields)."""

    busy: list[Busy]
    booking_starts: list[int]


def occupies(reservation: Reservation, now: float) -> bool:
    """Whether a reservation on the calendar occupies its time at `now`: all do but a hold that expired
    (swept or not)."""
    return reservation.expires_at is None or reservation.expires_at > now


def occupancy(reservations: Iterable[Reservation], external: Iterable[tuple[int, int]], now: float,
              exclude: Collection[str] = (), since: int | None = None) -> Occupancy:
    """What occupies a provider's time at `now`, as the engine takes it.

    `busy`: every occupying reservation with its buffer zones, but those in `exclude` (a reschedule is
    checked without the booking's own time), and the external busy times. `booking_starts`: the starts of
    occupying events and appointments, `exclude` included (host assignment counts bookings as they stand).
    `since` leaves out history: busy time that ended by then and bookings that started a day before it.
    """
    busy: list[Busy] = []
    starts: list[int] = []
    busy_since = -(2**62) if since is None else since
    starts_since = busy_since - STARTS_MARGIN
    for r in reservations:
        if r.expires_at is not None and r.expires_at <= now:
            continue  # not occupies(r, now), inlined: this loop runs per row of every slot query
        if r.end > busy_since and r.reservation_id not in exclude:
            busy.append(Busy(r.start, r.end, r.buffer_before, r.buffer_after))
        if r.kind in BOOKING_KINDS and r.start >= starts_since:
            starts.append(r.start)
    busy.extend(Busy(start, end) for start, end in external if end > busy_since)
    return Occupancy(busy, starts)


def occupants(reservations: Iterable[Reservation], external: Iterable[tuple[int, int]], now: float,
              exclude: Collection[str] = (), during: tuple[int, int] | None = None) -> list[Reservation]:
    """What occupies a provider's time at `now` by the same rule as `occupancy`, each item with its id and
    kind (external busy times: kind EXTERNAL, id ""), ordered by start (ties: reservations in the given
    order, then external): what the busy-times endpoints list.

    `during` keeps only the items whose time with its buffer zones overlaps that [start, end).
    """
    found = [r for r in reservations if occupies(r, now) and r.reservation_id not in exclude]
    found.extend(Reservation("", EXTERNAL, start, end) for start, end in external)
    if during is not None:
        start, end = during
        found = [r for r in found if r.end + r.buffer_after > start and r.start - r.buffer_before < end]
    found.sort(key=lambda r: r.start)
    return found
