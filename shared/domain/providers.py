"""Providers (stream provider-<id>): who can be booked, and their working-hours schedule."""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from collections.abc import Iterable
from typing import NamedTuple

from shared.availability import Busy, HostCalendar, parse_instant
from shared.availability.model import ProviderSchedule
from shared.domain.accounts import AccountState, require_account
from shared.domain.core import Decision, Env, provider_stream
from shared.domain.validation import (
    Problems,
    check_day,
    check_email,
    check_text,
    check_time_range,
    check_zone,
    parse_date,
)
from shared.errors import NotFound
from shared.messages.commands import CreateProvider, SetProviderSchedule
from shared.messages.events import (
    Event,
    ExternalBusyTimesSynced,
    ProviderCreated,
    ProviderScheduleSet,
    ReservationMoved,
    TimeReleased,
    TimeReserved,
)


class Reservation(NamedTuple):
    """Time taken on a calendar, in UTC seconds (buffers in seconds too)."""

    kind: str  # "event" | "appointment" | "hold" | "block"
    start: int
    end: int
    buffer_before: int = 0
    buffer_after: int = 0
    expires_at: int | None = None


class Calendar:
    """What occupies a provider's time. Mutable, but only ever changed on a private copy (see fold)."""

    __slots__ = ("reservations", "external")

    def __init__(self, reservations: dict[str, Reservation] | None = None,
                 external: list[tuple[int, int]] | None = None) -> None:
        self.reservations: dict[str, Reservation] = dict(reservations or {})
        self.external: list[tuple[int, int]] = list(external or [])

    def copy(self) -> Calendar:
        return Calendar(self.reservations, self.external)

    def apply(self, event: Event) -> None:
        match event:
            case TimeReserved():
                self.reservations[event.reservation_id] = Reservation(
                    event.kind, parse_instant(event.start_at), parse_instant(event.end_at),
                    event.buffer_before * 60, event.buffer_after * 60,
                    parse_instant(event.expires_at) if event.expires_at else None,
                )
            case TimeReleased():
                self.reservations.pop(event.reservation_id, None)
            case ReservationMoved():
                current = self.reservations.get(event.reservation_id)
                if current is not None:
                    self.reservations[event.reservation_id] = current._replace(
                        start=parse_instant(event.start_at), end=parse_instant(event.end_at))
            case ExternalBusyTimesSynced():
                self.external = replace_window(self.external, parse_instant(event.from_at),
                                               parse_instant(event.until_at),
                                               [(parse_instant(b.start_at), parse_instant(b.end_at))
                                                for b in event.busy_times])

    def busy(self, now: int, exclude: Iterable[str] = ()) -> list[Busy]:
        """Everything occupying time at `now`: bookings with buffers, blocks, unexpired holds, external busy.

        Time that ended more than a day ago is left out: no slot starts before now, and no buffer is
        longer than a day, so history never reaches the engine (its cost follows the future only).
        """
        skip = set(exclude)
        horizon = now - PAST_MARGIN
        busy = [Busy(r.start, r.end, r.buffer_before, r.buffer_after)
                for rid, r in self.reservations.items()
                if r.end > horizon and rid not in skip and (r.expires_at is None or r.expires_at > now)]
        busy.extend(Busy(start, end) for start, end in self.external if end > horizon)
        return busy

    def booking_starts(self, now: int) -> list[int]:
        """Starts of confirmed events and appointments that can share a local date with a slot from `now`
        (host assignment counts them per local date)."""
        since = now - 2 * PAST_MARGIN
        return [r.start for r in self.reservations.values()
                if r.kind in ("event", "appointment") and r.start >= since]


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


PAST_MARGIN = 86_400  # a day: the longest buffer, and more than any zone's distance from UTC

_CALENDAR_EVENTS = (TimeReserved, TimeReleased, ReservationMoved, ExternalBusyTimesSynced)


class ProviderState(msgspec.Struct, frozen=True):
    provider_id: str = ""
    account_id: str = ""
    display_name: str = ""
    email: str | None = None
    user_id: str | None = None
    created_at: str = ""
    schedule: ProviderSchedule = ProviderSchedule()
    calendar: Calendar = msgspec.field(default_factory=Calendar)

    @property
    def exists(self) -> bool:
        return bool(self.provider_id)

    def host_calendar(self, now: int, exclude: Iterable[str] = (), extra_busy: Iterable[Busy] = ()) -> HostCalendar:
        """The engine's view of this provider at `now`, leaving out the reservations in `exclude`."""
        return HostCalendar(provider_id=self.provider_id, schedule=self.schedule,
                            busy=self.calendar.busy(now, exclude) + list(extra_busy),
                            booking_starts=self.calendar.booking_starts(now))

    @property
    def time_zone(self) -> str:
        return self.schedule.time_zone


def fold(state: ProviderState, events: Iterable[Event]) -> ProviderState:
    """The provider after these events; its calendar is copied once, then changed in place."""
    calendar: Calendar | None = None
    for event in events:
        if isinstance(event, _CALENDAR_EVENTS):
            if calendar is None:
                calendar = state.calendar.copy()
            calendar.apply(event)
        else:
            state = evolve(state, event)
    return state if calendar is None else msgspec.structs.replace(state, calendar=calendar)


def evolve(state: ProviderState, event: Event) -> ProviderState:
    """The provider after one more event."""
    if isinstance(event, _CALENDAR_EVENTS):
        return fold(state, [event])
    match event:
        case ProviderCreated():
            return ProviderState(
                calendar=state.calendar, provider_id=event.provider_id, account_id=event.account_id, display_name=event.display_name,
                email=event.email, user_id=event.user_id, created_at=event.created_at,
                schedule=ProviderSchedule(time_zone=event.time_zone),
            )
        case ProviderScheduleSet():
            return msgspec.structs.replace(state, schedule=event.schedule)
    return state


def require_provider(state: ProviderState, account_id: str | None) -> ProviderState:
    """The provider, which must exist in the acting account (another account's is "not found")."""
    if not state.exists or state.account_id != account_id:
        raise NotFound("provider")
    return state


def provider_resource(state: ProviderState) -> dict[str, object]:
    """The provider as the HTTP API returns it."""
    return {
        "object": "provider", "id": state.provider_id, "display_name": state.display_name, "email": state.email,
        "time_zone": state.time_zone, "user_id": state.user_id, "created_at": state.created_at,
        "schedule": msgspec.to_builtins(state.schedule),
    }


def create_provider(command: CreateProvider, account: AccountState, env: Env) -> Decision:
    """A bookable person or resource with the default schedule (Mon-Fri 09:00-17:00, not public)."""
    require_account(account, command.account_id)
    problems = Problems()
    check_text(problems, "display_name", command.display_name, required=True)
    check_email(problems, "email", command.email)
    check_zone(problems, "time_zone", command.time_zone)
    problems.raise_if_any()
    event = ProviderCreated(provider_id=env.new_id("prov"), account_id=account.account_id,
                            display_name=command.display_name, email=command.email, time_zone=command.time_zone,
                            created_at=env.now_iso)
    return Decision([(provider_stream(event.provider_id), [event])], provider_resource(evolve(ProviderState(), event)))


def validate_schedule(schedule: ProviderSchedule) -> None:
    """Zone exists, times are HH:MM with start before end, days and dates are valid."""
    problems = Problems()
    check_zone(problems, "time_zone", schedule.time_zone)
    for i, rule in enumerate(schedule.weekly_rules):
        check_day(problems, f"weekly_rules[{i}].day_of_week", rule.day_of_week)
        check_time_range(problems, f"weekly_rules[{i}]", rule.start_time, rule.end_time)
    seen: set[str] = set()
    for i, override in enumerate(schedule.date_overrides):
        if parse_date(override.date) is None:
            problems.add(f"date_overrides[{i}].date", "must be a date YYYY-MM-DD")
        elif override.date in seen:
            problems.add(f"date_overrides[{i}].date", "appears twice")
        seen.add(override.date)
        for j, interval in enumerate(override.intervals):
            check_time_range(problems, f"date_overrides[{i}].intervals[{j}]", interval.start_time, interval.end_time)
    start = parse_date(schedule.effective_from) if schedule.effective_from is not None else None
    until = parse_date(schedule.effective_until) if schedule.effective_until is not None else None
    problems.check(schedule.effective_from is None or start is not None, "effective_from", "must be a date YYYY-MM-DD")
    problems.check(schedule.effective_until is None or until is not None, "effective_until",
                   "must be a date YYYY-MM-DD")
    if start and until and until < start:
        problems.add("effective_until", "must not be before effective_from")
    problems.raise_if_any()


def set_provider_schedule(command: SetProviderSchedule, state: ProviderState, env: Env) -> Decision:
    """Replace the given parts of the provider's schedule."""
    require_provider(state, command.account_id)
    current = state.schedule
    changes = {name: getattr(command, name) for name in (
        "time_zone", "weekly_rules", "date_overrides", "effective_from", "effective_until", "public_bookings",
    ) if getattr(command, name) is not UNSET}
    schedule = msgspec.structs.replace(current, **changes)
    validate_schedule(schedule)
    event = ProviderScheduleSet(provider_id=state.provider_id, schedule=schedule)
    return Decision([(provider_stream(state.provider_id), [event])], provider_resource(evolve(state, event)))
