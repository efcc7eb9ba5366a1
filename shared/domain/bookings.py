"""Booking on links: events (stream event-<id>) and holds, a.k.a. booking intents (stream bi-<id>).

Every booking is decided against the current calendars of the providers it takes time from and
appended to their streams with the versions it was decided on; a concurrent booking of the same
time therefore conflicts, is re-decided, and then finds the slot taken (DESIGN.md section 3).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from shared.availability import LinkRules, choose_host, free_hosts, iso_utc, is_link_slot, parse_instant
from shared.domain.core import Decision, Env, event_stream, hold_stream, link_stream, provider_stream
from shared.domain.links import LinkState, require_link
from shared.domain.providers import ProviderState
from shared.domain.validation import Problems, check_email, check_text, check_zone
from shared.errors import NotFound, ValidationFailed
from shared.messages.commands import CancelEvent, CreateEvent, HoldSlot, ReleaseHold, RescheduleEvent
from shared.messages.events import (
    Attendee,
    Event,
    EventCanceled,
    EventCreated,
    EventRescheduled,
    HoldCompleted,
    HoldExpired,
    HoldReleased,
    LinkPreview,
    LinkToggled,
    ReservationMoved,
    SlotHeld,
    TimeReleased,
    TimeReserved,
)

NOT_A_SLOT = "is not an available slot"


# --- states -------------------------------------------------------------------------------------

class BookedEventState(msgspec.Struct, frozen=True):
    created: EventCreated | None = None
    state: str = "confirmed"
    start_at: str = ""
    end_at: str = ""
    canceled_at: str | None = None
    cancel_reason: str | None = None
    rescheduled_at: str | None = None
    reschedule_reason: str | None = None
    original_start_at: str | None = None
    original_end_at: str | None = None

    @property
    def exists(self) -> bool:
        return self.created is not None


def evolve_event(state: BookedEventState, event: Event) -> BookedEventState:
    match event:
        case EventCreated():
            return BookedEventState(created=event, start_at=event.start_at, end_at=event.end_at)
        case EventCanceled():
            return msgspec.structs.replace(state, state="canceled", canceled_at=event.canceled_at,
                                           cancel_reason=event.cancel_reason)
        case EventRescheduled():
            return msgspec.structs.replace(
                state, start_at=event.start_at, end_at=event.end_at, rescheduled_at=event.rescheduled_at,
                reschedule_reason=event.reschedule_reason,
                original_start_at=state.original_start_at or state.start_at,
                original_end_at=state.original_end_at or state.end_at,
            )
    return state


class HoldState(msgspec.Struct, frozen=True):
    held: SlotHeld | None = None
    state: str = "active"  # active | completed | abandoned | expired
    appointment_id: str | None = None
    event_id: str | None = None

    @property
    def exists(self) -> bool:
        return self.held is not None

    def is_active(self, now: int) -> bool:
        """Active and not yet past its expiry (an unswept expired hold is already dead)."""
        assert self.held is not None
        return self.state == "active" and parse_instant(self.held.expires_at) > now

    def current_state(self, now: int) -> str:
        return "expired" if self.state == "active" and not self.is_active(now) else self.state


def evolve_hold(state: HoldState, event: Event) -> HoldState:
    match event:
        case SlotHeld():
            return HoldState(held=event)
        case HoldReleased():
            return msgspec.structs.replace(state, state="abandoned")
        case HoldCompleted():
            return msgspec.structs.replace(state, state="completed", appointment_id=event.appointment_id,
                                           event_id=event.event_id)
        case HoldExpired():
            return msgspec.structs.replace(state, state="expired")
    return state


# --- resources ----------------------------------------------------------------------------------

def event_resource(state: BookedEventState, public_url: str) -> dict[str, Any]:
    """The event as the HTTP API returns it: every field of seed 002."""
    created = state.created
    assert created is not None
    start, end = parse_instant(state.start_at), parse_instant(state.end_at)
    organizer = msgspec.to_builtins(created.organizer)
    scheduler = msgspec.to_builtins(created.scheduler)
    return {
        "id": created.event_id, "state": state.state, "summary": created.summary,
        "description": created.description, "additional_info": None, "location": None,
        "conferencing": {"type": None, "meeting_id": None, "join_url": None, "instructions": None},
        "created_at": created.created_at, "start_at": state.start_at, "end_at": state.end_at,
        "duration": (end - start) // 60, "canceled_at": state.canceled_at, "cancel_reason": state.cancel_reason,
        "rescheduled_at": state.rescheduled_at, "reschedule_reason": state.reschedule_reason,
        "original_start_at": state.original_start_at, "original_end_at": state.original_end_at,
        "link": msgspec.to_builtins(created.link), "poll": None, "scope": msgspec.to_builtins(created.scope),
        "scheduler": scheduler, "organizer": organizer, "attendees": [scheduler, organizer], "payment": None,
        "metadata": created.metadata, "url": f"{public_url}/events/{created.event_id}", "location_settings": [],
        "description_settings": {"include_attendees": True, "include_link_name": True, "include_fields": True},
        "buffer_before": created.buffer_before, "buffer_after": created.buffer_after,
        "is_group_session": False, "maximum_group_size": 1,
    }


def hold_resource(state: HoldState, now: int) -> dict[str, Any]:
    """A booking intent: `{id, state, expires_at, provider_id, start_at, end_at}` and what it holds."""
    held = state.held
    assert held is not None
    return {
        "object": "booking_intent", "id": held.booking_intent_id, "state": state.current_state(now),
        "expires_at": held.expires_at, "provider_id": held.provider_ids[0], "provider_ids": held.provider_ids,
        "service_id": held.service_id, "link_id": held.link_id, "start_at": held.start_at, "end_at": held.end_at,
        "duration": held.duration, "appointment_id": state.appointment_id, "event_id": state.event_id,
        "created_at": held.created_at,
    }


# --- shared checks ------------------------------------------------------------------------------

def instant(problems: Problems, field: str, text: str | None) -> int | None:
    """UTC seconds of an ISO-8601 datetime with an offset, or a field error."""
    if not isinstance(text, str) or not text:
        problems.add(field, "is required")
        return None
    try:
        return parse_instant(text)
    except ValueError:
        problems.add(field, "must be an ISO-8601 datetime with a time zone offset")
        return None


def check_interval(problems: Problems, start_at: str, end_at: str) -> tuple[int | None, int | None]:
    """start_at and end_at as UTC seconds: end after start by a whole number of minutes."""
    start = instant(problems, "start_at", start_at)
    end = instant(problems, "end_at", end_at)
    if start is not None and end is not None:
        if end <= start:
            problems.add("end_at", "must be after start_at")
        elif (end - start) % 60:
            problems.add("end_at", "must be a whole number of minutes after start_at")
    return start, end


def check_booker(problems: Problems, display_name: str, email: str, time_zone: str) -> None:
    check_text(problems, "display_name", display_name, required=True)
    check_text(problems, "email", email, required=True, max_length=320)
    if email:
        check_email(problems, "email", email)
    check_zone(problems, "time_zone", time_zone)


def link_rules(link: LinkState) -> LinkRules:
    settings = link.settings
    assert settings is not None
    return LinkRules(
        time_zone=settings.time_zone, durations=settings.durations, increment=settings.increment,
        buffer_before=settings.buffer_before, buffer_after=settings.buffer_after,
        minimum_notice=settings.minimum_notice, maximum_days_ahead=settings.maximum_days_ahead,
        availability=settings.availability, host_mode=settings.host_mode,
    )


def require_active_link(state: LinkState, account_id: str | None) -> LinkState:
    require_link(state, account_id)
    assert state.settings is not None
    if state.settings.state != "active":
        raise ValidationFailed.on("link_id", "the link is disabled")
    return state


def on_hosts(link: LinkState, provider_ids: list[str], host_mode: str) -> LinkState:
    """The link as if these were its hosts (a booking that must stay on given providers)."""
    assert link.settings is not None
    return msgspec.structs.replace(
        link, settings=msgspec.structs.replace(link.settings, hosts=provider_ids, host_mode=host_mode))


def hosts_for_slot(link: LinkState, hosts: dict[str, ProviderState], now: int, start: int, duration: int,
                   exclude: tuple[str, ...] = ()) -> list[str]:
    """The providers a booking of (start, duration) takes time from now, or a 422 on start_at."""
    assert link.settings is not None
    rules = link_rules(link)
    if duration not in rules.durations:
        raise ValidationFailed.on("end_at", f"gives a duration the link does not offer ({duration} minutes)")
    calendars = [hosts[h].host_calendar(now, exclude) for h in link.settings.hosts if h in hosts and hosts[h].exists]
    if not is_link_slot(rules, calendars, now, start, duration):
        raise ValidationFailed.on("start_at", NOT_A_SLOT)
    if rules.host_mode == "all":
        return [c.provider_id for c in calendars]
    return [choose_host(rules, calendars, free_hosts(rules, calendars, now, start, duration), start)]


def reserve(provider_ids: list[str], reservation_id: str, kind: str, start: int, end: int,
            buffer_before: int = 0, buffer_after: int = 0,
            expires_at: str | None = None) -> list[tuple[str, list[Event]]]:
    return [(provider_stream(p), [TimeReserved(
        provider_id=p, reservation_id=reservation_id, kind=kind, start_at=iso_utc(start), end_at=iso_utc(end),
        buffer_before=buffer_before, buffer_after=buffer_after, expires_at=expires_at)]) for p in provider_ids]


def release(provider_ids: list[str], reservation_id: str) -> list[tuple[str, list[Event]]]:
    return [(provider_stream(p), [TimeReleased(provider_id=p, reservation_id=reservation_id)])
            for p in provider_ids]


def _attendee(env: Env, name: str, email: str | None, zone: str, organizer: bool,
              fields: list[dict[str, Any]] | None = None) -> Attendee:
    first, _, last = name.partition(" ")
    return Attendee(id=env.new_id("attendee"), email=email, display_name=name, first_name=first or None,
                    last_name=last or None, time_zone=zone, is_organizer=organizer, is_scheduler=not organizer,
                    fields=fields or [])


# --- link events ----------------------------------------------------------------------------------

def book_event(link: LinkState, hosts: dict[str, ProviderState], env: Env, *, display_name: str, email: str,
               time_zone: str, start: int, duration: int, fields: list[dict[str, Any]],
               metadata: dict[str, Any], booking_intent_id: str | None = None,
               exclude: tuple[str, ...] = (),
               decided_at: int | None = None) -> tuple[list[tuple[str, list[Event]]], BookedEventState]:
    """The events of a new link event at (start, duration): calendar entries, the event, a used-up link.

    `decided_at` is the moment the slot is checked at (a completed hold: when it was taken).
    """
    settings = link.settings
    assert settings is not None and link.scope is not None
    now = decided_at if decided_at is not None else int(env.now.timestamp())
    chosen = hosts_for_slot(link, hosts, now, start, duration, exclude)
    end = start + duration * 60
    event_id = env.new_id("event")
    organizer_state = hosts[chosen[0]]
    organizer = _attendee(env, organizer_state.display_name, organizer_state.email, organizer_state.time_zone, True)
    scheduler = _attendee(env, display_name, email, time_zone, False, fields)
    created = EventCreated(
        event_id=event_id, account_id=link.account_id,
        link=LinkPreview(id=link.link_id, name=settings.name, private_name=settings.private_name,
                         slug=settings.slug),
        scope=link.scope, provider_ids=chosen, organizer=organizer, scheduler=scheduler,
        summary=f"{organizer.display_name} and {display_name}", description=settings.description,
        start_at=iso_utc(start), end_at=iso_utc(end), duration=duration, buffer_before=settings.buffer_before,
        buffer_after=settings.buffer_after, metadata=metadata, booking_intent_id=booking_intent_id,
        created_at=env.now_iso,
    )
    changes = reserve(chosen, event_id, "event", start, end, settings.buffer_before, settings.buffer_after)
    changes.append((event_stream(event_id), [created]))
    if settings.type == "single":
        # Appended with the link's version: of two racing bookings of a single-use link, one wins.
        changes.append((link_stream(link.link_id),
                        [LinkToggled(link_id=link.link_id, state="disabled", updated_at=env.now_iso)]))
    return changes, evolve_event(BookedEventState(), created)


def create_event(command: CreateEvent, link: LinkState, hosts: dict[str, ProviderState], env: Env) -> Decision:
    """Book a link event, only on a slot the engine offers at this moment."""
    require_active_link(link, command.account_id)
    problems = Problems()
    check_booker(problems, command.display_name, command.email, command.time_zone)
    start, end = check_interval(problems, command.start_at, command.end_at)
    problems.raise_if_any()
    assert start is not None and end is not None
    changes, booked = book_event(link, hosts, env, display_name=command.display_name, email=command.email,
                                 time_zone=command.time_zone, start=start, duration=(end - start) // 60,
                                 fields=command.fields, metadata=command.metadata)
    return Decision(changes, event_resource(booked, env.public_url))


def require_event(state: BookedEventState, account_id: str | None) -> BookedEventState:
    if not state.exists or state.created is None or state.created.account_id != account_id:
        raise NotFound("event")
    return state


def cancel_event(command: CancelEvent, state: BookedEventState, env: Env) -> Decision:
    """Cancel a confirmed event and free its hosts' time."""
    require_event(state, command.account_id)
    assert state.created is not None
    if state.state == "canceled":
        raise ValidationFailed.on("event_id", "the event is already canceled")
    event = EventCanceled(event_id=state.created.event_id, canceled_at=env.now_iso,
                          cancel_reason=command.cancel_reason)
    changes = release(state.created.provider_ids, state.created.event_id)
    changes.append((event_stream(state.created.event_id), [event]))
    return Decision(changes, event_resource(evolve_event(state, event), env.public_url))


def reschedule_event(command: RescheduleEvent, state: BookedEventState, link: LinkState,
                     hosts: dict[str, ProviderState], env: Env) -> Decision:
    """Move a confirmed event to another slot of its link, on the same hosts; its own time is not busy."""
    require_event(state, command.account_id)
    created = state.created
    assert created is not None
    if state.state == "canceled":
        raise ValidationFailed.on("event_id", "a canceled event cannot be rescheduled")
    if not link.exists:
        raise ValidationFailed.on("event_id", "the event's link no longer exists")
    problems = Problems()
    start, end = check_interval(problems, command.start_at, command.end_at)
    problems.raise_if_any()
    assert start is not None and end is not None
    own_hosts = {p: hosts[p] for p in created.provider_ids if p in hosts}
    # Validated as a booking on the event's own hosts, with its current reservation not counting.
    restricted = on_hosts(link, created.provider_ids, "all")
    hosts_for_slot(restricted, own_hosts, int(env.now.timestamp()), start, (end - start) // 60,
                   exclude=(created.event_id,))
    event = EventRescheduled(event_id=created.event_id, start_at=iso_utc(start), end_at=iso_utc(end),
                             rescheduled_at=env.now_iso, reschedule_reason=command.reschedule_reason)
    changes: list[tuple[str, list[Event]]] = [
        (provider_stream(p), [ReservationMoved(provider_id=p, reservation_id=created.event_id,
                                               start_at=event.start_at, end_at=event.end_at)])
        for p in created.provider_ids]
    changes.append((event_stream(created.event_id), [event]))
    return Decision(changes, event_resource(evolve_event(state, event), env.public_url))


# --- holds on links -------------------------------------------------------------------------------

def hold_expiry(command: HoldSlot, env: Env) -> str:
    if not 1 <= command.hold_minutes <= 1440:
        raise ValidationFailed.on("hold_minutes", "must be 1 to 1440 minutes")
    return iso_utc(int((env.now + timedelta(minutes=command.hold_minutes)).timestamp()))


def new_hold(env: Env, account_id: str, provider_ids: list[str], start: int, duration: int, expires_at: str,
             service_id: str | None = None, link_id: str | None = None,
             buffers: tuple[int, int] = (0, 0)) -> Decision:
    """A hold: the time reserved on every provider until `expires_at`, and the booking intent itself."""
    hold_id = env.new_id("bi")
    end = start + duration * 60
    held = SlotHeld(booking_intent_id=hold_id, account_id=account_id, service_id=service_id, link_id=link_id,
                    provider_ids=provider_ids, start_at=iso_utc(start), end_at=iso_utc(end), duration=duration,
                    expires_at=expires_at, created_at=env.now_iso)
    changes = reserve(provider_ids, hold_id, "hold", start, end, *buffers, expires_at=expires_at)
    changes.append((hold_stream(hold_id), [held]))
    return Decision(changes, hold_resource(evolve_hold(HoldState(), held), int(env.now.timestamp())))


def hold_link_slot(command: HoldSlot, link: LinkState, hosts: dict[str, ProviderState], env: Env) -> Decision:
    """Hold a link slot for everyone else until it expires (an "all" link holds every host)."""
    require_active_link(link, command.account_id)
    assert link.settings is not None
    problems = Problems()
    start = instant(problems, "start_at", command.start_at)
    problems.raise_if_any()
    assert start is not None
    duration = command.duration if command.duration is not None else link.settings.default_duration
    if command.provider_id is not None:
        if command.provider_id not in link.settings.hosts:
            raise ValidationFailed.on("provider_id", "is not a host of this link")
    if command.provider_id is not None and link.settings.host_mode == "any":
        link = on_hosts(link, [command.provider_id], "all")
    try:
        chosen = hosts_for_slot(link, hosts, int(env.now.timestamp()), start, duration)
    except ValidationFailed as exc:
        if "end_at" in exc.fields:
            raise ValidationFailed.on("duration", "is not a duration the link offers") from None
        raise
    return new_hold(env, link.account_id, chosen, start, duration, hold_expiry(command, env), link_id=link.link_id)


def require_hold(state: HoldState, account_id: str | None) -> HoldState:
    if not state.exists or state.held is None or state.held.account_id != account_id:
        raise NotFound("booking_intent")
    return state


def release_hold(command: ReleaseHold, state: HoldState, env: Env) -> Decision:
    """Abandon an active hold: its time is free again at once."""
    require_hold(state, command.account_id)
    held = state.held
    assert held is not None
    now = int(env.now.timestamp())
    if not state.is_active(now):
        raise ValidationFailed.on("booking_intent_id", f"the booking intent is {state.current_state(now)}")
    event = HoldReleased(booking_intent_id=held.booking_intent_id, released_at=env.now_iso)
    changes = release(held.provider_ids, held.booking_intent_id)
    changes.append((hold_stream(held.booking_intent_id), [event]))
    return Decision(changes, hold_resource(evolve_hold(state, event), now))


def expire_hold(state: HoldState, env: Env) -> Decision:
    """Mark a hold past its expiry as expired (the sweeper's command); its time is already free."""
    held = state.held
    if held is None:
        raise NotFound("booking_intent")
    now = int(env.now.timestamp())
    if state.state != "active":
        raise ValidationFailed.on("booking_intent_id", f"the booking intent is {state.state}")
    if state.is_active(now):
        raise ValidationFailed.on("booking_intent_id", "the booking intent has not expired yet")
    event = HoldExpired(booking_intent_id=held.booking_intent_id, expired_at=env.now_iso)
    changes = release(held.provider_ids, held.booking_intent_id)
    changes.append((hold_stream(held.booking_intent_id), [event]))
    return Decision(changes, hold_resource(evolve_hold(state, event), now))


def complete_link_hold(state: HoldState, link: LinkState, hosts: dict[str, ProviderState], env: Env, *,
                       display_name: str, email: str, time_zone: str) -> Decision:
    """Turn an active link hold into the event, atomically, on the held hosts."""
    held = state.held
    assert held is not None
    now = int(env.now.timestamp())
    if not state.is_active(now):
        raise ValidationFailed.on("booking_intent_id", f"the booking intent is {state.current_state(now)}")
    require_active_link(link, held.account_id)
    assert link.settings is not None
    problems = Problems()
    check_booker(problems, display_name, email, time_zone)
    problems.raise_if_any()
    on_held_hosts = on_hosts(link, held.provider_ids, "all" if len(held.provider_ids) > 1 else "any")
    changes, booked = book_event(on_held_hosts, hosts, env, display_name=display_name, email=email,
                                 time_zone=time_zone, start=parse_instant(held.start_at), duration=held.duration,
                                 fields=[], metadata={}, booking_intent_id=held.booking_intent_id,
                                 exclude=(held.booking_intent_id,), decided_at=held_since(held))
    assert booked.created is not None
    completed = HoldCompleted(booking_intent_id=held.booking_intent_id, completed_at=env.now_iso,
                              event_id=booked.created.event_id)
    changes = merge_changes(release(held.provider_ids, held.booking_intent_id) + changes)
    changes.append((hold_stream(held.booking_intent_id), [completed]))
    return Decision(changes, event_resource(booked, env.public_url))


def held_since(held: SlotHeld) -> int:
    """The hold protected its slot since it was taken: notice and horizon are judged as of then."""
    return parse_instant(held.created_at)


def merge_changes(changes: list[tuple[str, list[Event]]]) -> list[tuple[str, list[Event]]]:
    """One entry per stream, events in order (an append lists each stream once)."""
    merged: dict[str, list[Event]] = {}
    for stream_id, events in changes:
        merged.setdefault(stream_id, []).extend(events)
    return list(merged.items())
