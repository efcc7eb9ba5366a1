"""Meetings booked on links (seed 001/002): events, stream event-<id>.

A booking is decided against the current calendars of the hosts it takes time from and reserves
that time on their streams (shared.domain.reservations), so of two racing bookings one wins.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.availability import choose_host, free_hosts, is_link_slot, iso_utc, parse_instant
from shared.domain.core import Decision, Env, EventTypes, event_stream, link_stream, unchanged
from shared.domain.links import LinkState, link_rules, on_hosts, require_active_link
from shared.domain.providers import ProviderState
from shared.domain.reservations import NOT_A_SLOT, move, release, reserve
from shared.domain.validation import Problems, check_booker, check_interval
from shared.errors import NotFound, ValidationFailed
from shared.manage import manage_urls
from shared.messages.commands import CancelEvent, CreateEvent, RescheduleEvent
from shared.messages.events import (
    Attendee,
    Event,
    EventCanceled,
    EventCreated,
    EventRescheduled,
    LinkPreview,
    LinkToggled,
)


class BookedEventState(msgspec.Struct, frozen=True):
    """A link event as folded from its stream."""

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
        """Whether the event was ever booked."""
        return self.created is not None


# What a event-<id> stream holds: every type is folded, none is ignored.
BOOKING_STREAM_EVENTS = EventTypes(handles=frozenset({EventCreated, EventCanceled, EventRescheduled}))


def evolve_event(state: BookedEventState, event: Event) -> BookedEventState:
    """The link event after one more event."""
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
    return unchanged(state, event, BOOKING_STREAM_EVENTS)


def event_resource(state: BookedEventState, public_url: str, signing_secret: str) -> dict[str, Any]:
    """The event as the HTTP API returns it: every field of seed 002, plus its signed manage links."""
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
        **manage_urls(public_url, signing_secret, created.event_id, state.start_at),
    }


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


def _attendee(env: Env, name: str, email: str | None, zone: str, organizer: bool,
              fields: list[dict[str, Any]] | None = None) -> Attendee:
    first, _, last = name.partition(" ")
    return Attendee(id=env.new_id("attendee"), email=email, display_name=name, first_name=first or None,
                    last_name=last or None, time_zone=zone, is_organizer=organizer, is_scheduler=not organizer,
                    fields=fields or [])


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
    return Decision(changes, event_resource(booked, env.public_url, env.signing_secret))


def require_event(state: BookedEventState, account_id: str | None) -> BookedEventState:
    """The event, which must exist in the acting account (another account's is "not found")."""
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
    return Decision(changes, event_resource(evolve_event(state, event), env.public_url, env.signing_secret))


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
    changes = move(created.provider_ids, created.event_id, event.start_at, event.end_at)
    changes.append((event_stream(created.event_id), [event]))
    return Decision(changes, event_resource(evolve_event(state, event), env.public_url, env.signing_secret))
