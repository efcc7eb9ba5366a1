"""Holds, a.k.a. booking intents (stream bi-<bi>): a slot of a link or a service kept until it expires.

A hold reserves its time on the providers' calendars like a booking (reservations.reserve, with
`expires_at`); completing it turns it into the link event or the appointment atomically, releasing
the hold's time and reserving the booking's in one append.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from shared.availability import iso_utc, parse_instant
from shared.domain.appointments import (
    appointment_resource,
    book_appointment,
    providers_for_slot,
    service_guards,
)
from shared.domain.core import Decision, Env, EventTypes, hold_stream, unchanged
from shared.domain.link_bookings import book_event, event_resource, hosts_for_slot
from shared.domain.links import LinkState, on_hosts, require_active_link
from shared.domain.providers import ProviderState
from shared.domain.reservations import merge_changes, release, reserve
from shared.domain.service_catalogue import LocationState, ServiceState, require_service
from shared.domain.validation import Problems, check_booker, instant
from shared.errors import NotFound, ValidationFailed
from shared.messages.commands import HoldSlot, ReleaseHold
from shared.messages.events import Client, Event, HoldCompleted, HoldExpired, HoldReleased, SlotHeld


class HoldState(msgspec.Struct, frozen=True):
    """A booking intent as folded from its stream."""

    held: SlotHeld | None = None
    state: str = "active"  # active | completed | abandoned | expired
    appointment_id: str | None = None
    event_id: str | None = None

    @property
    def exists(self) -> bool:
        """Whether the slot was ever held (the stream has a SlotHeld)."""
        return self.held is not None

    def is_active(self, now: int) -> bool:
        """Active and not yet past its expiry (an unswept expired hold is already dead)."""
        assert self.held is not None
        return self.state == "active" and parse_instant(self.held.expires_at) > now

    def current_state(self, now: int) -> str:
        """The state as of `now`: an active hold past its expiry is "expired" even before it is swept."""
        return "expired" if self.state == "active" and not self.is_active(now) else self.state


# What a bi-<id> stream holds: every type is folded, none is ignored.
HOLD_STREAM_EVENTS = EventTypes(handles=frozenset({SlotHeld, HoldReleased, HoldCompleted, HoldExpired}))


def evolve_hold(state: HoldState, event: Event) -> HoldState:
    """The booking intent after one more event."""
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
    return unchanged(state, event, HOLD_STREAM_EVENTS)


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



def check_hold_minutes(problems: Problems, command: HoldSlot) -> None:
    """`hold_minutes` is 1 to 1440."""
    problems.check(1 <= command.hold_minutes <= 1440, "hold_minutes", "must be 1 to 1440 minutes")


def hold_expiry(command: HoldSlot, env: Env) -> str:
    """When a hold taken now ends (`hold_minutes` from now, 1 to 1440)."""
    problems = Problems()
    check_hold_minutes(problems, command)
    problems.raise_if_any()
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


# --- holds on links ------------------------------------------------------------------------------

def hold_link_slot(command: HoldSlot, link: LinkState, hosts: dict[str, ProviderState], env: Env) -> Decision:
    """Hold a link slot for everyone else until it expires (an "all" link holds every host)."""
    require_active_link(link, command.account_id)
    assert link.settings is not None
    problems = Problems()
    start = instant(problems, "start_at", command.start_at)
    check_hold_minutes(problems, command)
    if command.provider_id is not None:
        problems.check(command.provider_id in link.settings.hosts, "provider_id", "is not a host of this link")
    problems.raise_if_any()
    assert start is not None
    duration = command.duration if command.duration is not None else link.settings.default_duration
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
    """The booking intent, which must exist in the acting account (another account's is "not found")."""
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
    return Decision(changes, event_resource(booked, env.public_url, env.signing_secret))


def held_since(held: SlotHeld) -> int:
    """The hold protected its slot since it was taken: notice and horizon are judged as of then."""
    return parse_instant(held.created_at)


# --- holds on services ---------------------------------------------------------------------------

def hold_service_slot(command: HoldSlot, service: ServiceState, providers: dict[str, ProviderState],
                      location: LocationState, env: Env) -> Decision:
    """Hold a service slot with one provider until it expires."""
    require_service(service, command.account_id)
    assert service.created is not None
    problems = Problems()
    start = instant(problems, "start_at", command.start_at)
    if command.duration is not None and command.duration != service.created.duration:
        problems.add("duration", "a service slot lasts the service's duration")
    check_hold_minutes(problems, command)
    problems.raise_if_any()
    assert start is not None
    expires_at = hold_expiry(command, env)
    sp = providers_for_slot(service, providers, location, int(env.now.timestamp()), start, command.provider_id)
    decision = new_hold(env, service.created.account_id, [sp.provider_id], start, service.created.duration,
                        expires_at, service_id=service.created.service_id)
    return decision._replace(guards=service_guards(service, service.created.location_id,
                                                    service.created.account_id))


def complete_service_hold(state: HoldState, service: ServiceState, providers: dict[str, ProviderState],
                          location: LocationState, env: Env, *, client: Client) -> Decision:
    """Turn an active service hold into the appointment, atomically."""
    held = state.held
    assert held is not None and service.created is not None
    now = int(env.now.timestamp())
    if not state.is_active(now):
        raise ValidationFailed.on("booking_intent_id", f"the booking intent is {state.current_state(now)}")
    problems = Problems()
    check_booker(problems, client.display_name, client.email, client.time_zone)
    problems.raise_if_any()
    changes, booked = book_appointment(service, providers, location, env, start=parse_instant(held.start_at),
                                       provider_id=held.provider_ids[0], client=client,
                                       booking_intent_id=held.booking_intent_id, exclude=(held.booking_intent_id,),
                                       decided_at=held_since(held))
    assert booked.created is not None
    completed = HoldCompleted(booking_intent_id=held.booking_intent_id, completed_at=env.now_iso,
                              appointment_id=booked.created.appointment_id)
    changes = merge_changes(release(held.provider_ids, held.booking_intent_id) + changes)
    changes.append((hold_stream(held.booking_intent_id), [completed]))
    return Decision(changes, appointment_resource(booked, env.public_url, env.signing_secret),
                    guards=service_guards(service, service.created.location_id, service.created.account_id))
