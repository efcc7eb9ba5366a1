"""Providers (stream provider-<id>): who can be booked, and their working-hours schedule."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec import UNSET

from shared.availability import Busy, HostCalendar
from shared.availability.model import ProviderSchedule
from shared.domain.accounts import AccountState, require_account
from shared.domain.core import Decision, Env, EventTypes, provider_stream, unchanged
from shared.domain.reservations import CALENDAR_EVENTS, Calendar
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
from shared.messages.events import Event, ProviderCreated, ProviderScheduleSet


class ProviderState(msgspec.Struct, frozen=True):
    """A provider as folded from its stream: who it is, its schedule and its calendar."""

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
        """Whether the provider was ever created."""
        return bool(self.provider_id)

    def host_calendar(self, now: int, exclude: Iterable[str] = (), extra_busy: Iterable[Busy] = ()) -> HostCalendar:
        """The engine's view of this provider at `now`, leaving out the reservations in `exclude`."""
        busy, booking_starts = self.calendar.occupancy(now, exclude)
        busy.extend(extra_busy)
        return HostCalendar(provider_id=self.provider_id, schedule=self.schedule, busy=busy,
                            booking_starts=booking_starts)

    @property
    def time_zone(self) -> str:
        """The zone the provider's schedule is in."""
        return self.schedule.time_zone


def fold(state: ProviderState, events: Iterable[Event]) -> ProviderState:
    """The provider after these events; its calendar is copied once, then changed in place."""
    calendar: Calendar | None = None
    for event in events:
        if isinstance(event, CALENDAR_EVENTS):
            if calendar is None:
                calendar = state.calendar.copy()
            calendar.apply(event)
        else:
            state = evolve(state, event)
    return state if calendar is None else msgspec.structs.replace(state, calendar=calendar)


# What a provider-<id> stream holds: every type is folded, none is ignored.
PROVIDER_STREAM_EVENTS = EventTypes(handles=frozenset({
    ProviderCreated, ProviderScheduleSet, *CALENDAR_EVENTS,
}))


def evolve(state: ProviderState, event: Event) -> ProviderState:
    """The provider after one more event."""
    if isinstance(event, CALENDAR_EVENTS):
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
    return unchanged(state, event, PROVIDER_STREAM_EVENTS)


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
