"""Appointments (stream appt-<appt>): a service booked with one of its providers.

An appointment takes time on the provider's stream (reservations.reserve) and guards the service
and location streams whose blocks it was decided against.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from shared.availability import LinkRules, choose_host, iso_utc, service_free_providers
from shared.domain.core import (
    Decision,
    Env,
    EventTypes,
    appointment_stream,
    location_stream,
    service_stream,
    unchanged,
)
from shared.domain.providers import ProviderState
from shared.domain.reservations import NOT_A_SLOT, move, release, reserve
from shared.domain.service_catalogue import LocationState, ServiceProviderInfo, ServiceState, require_service
from shared.domain.validation import Problems, check_booker, instant
from shared.errors import NotFound, ValidationFailed
from shared.manage import manage_urls
from shared.messages.commands import CancelAppointment, CreateAppointment, RescheduleAppointment
from shared.messages.events import (
    AppointmentCanceled,
    AppointmentCreated,
    AppointmentRescheduled,
    Client,
    Event,
)


class AppointmentState(msgspec.Struct, frozen=True):
    """An appointment as folded from its stream."""

    created: AppointmentCreated | None = None
    state: str = "confirmed"
    canceled_at: str | None = None
    cancel_reason: str | None = None
    # Set by a reschedule only. UNSET is never encoded, so a state never rescheduled keeps the stored
    # shape it always had (the golden log v1 and the read models folded before reschedules existed).
    moved_start_at: str | UnsetType = UNSET
    moved_end_at: str | UnsetType = UNSET
    rescheduled_at: str | UnsetType = UNSET
    reschedule_reason: str | None | UnsetType = UNSET
    original_start_at: str | UnsetType = UNSET
    original_end_at: str | UnsetType = UNSET

    @property
    def start_at(self) -> str:
        """When the appointment starts now: its booked time, or where its last reschedule moved it."""
        if isinstance(self.moved_start_at, str):
            return self.moved_start_at
        return self.created.start_at if self.created is not None else ""

    @property
    def end_at(self) -> str:
        """When the appointment ends now."""
        if isinstance(self.moved_end_at, str):
            return self.moved_end_at
        return self.created.end_at if self.created is not None else ""


# What a appt-<id> stream holds: every type is folded, none is ignored.
APPOINTMENT_STREAM_EVENTS = EventTypes(handles=frozenset({AppointmentCreated, AppointmentCanceled,
                                                          AppointmentRescheduled}))


def evolve_appointment(state: AppointmentState, event: Event) -> AppointmentState:
    """The appointment after one more event."""
    match event:
        case AppointmentCreated():
            return AppointmentState(created=event)
        case AppointmentCanceled():
            return msgspec.structs.replace(state, state="canceled", canceled_at=event.canceled_at,
                                           cancel_reason=event.cancel_reason)
        case AppointmentRescheduled():
            return msgspec.structs.replace(
                state, moved_start_at=event.start_at, moved_end_at=event.end_at,
                rescheduled_at=event.rescheduled_at, reschedule_reason=event.reschedule_reason,
                original_start_at=(state.original_start_at if isinstance(state.original_start_at, str)
                                   else state.start_at),
                original_end_at=state.original_end_at if isinstance(state.original_end_at, str) else state.end_at)
    return unchanged(state, event, APPOINTMENT_STREAM_EVENTS)


def appointment_resource(state: AppointmentState, public_url: str, signing_secret: str) -> dict[str, Any]:
    """The appointment as the HTTP API returns it, with its signed manage links."""
    created = state.created
    assert created is not None
    resource = {"object": "appointment", "id": created.appointment_id, "state": state.state,
                "service_id": created.service_id, "provider_id": created.provider_id,
                "service_provider_id": created.service_provider_id, "start_at": state.start_at,
                "end_at": state.end_at, "duration": created.duration, "client": msgspec.to_builtins(created.client),
                "booking_intent_id": created.booking_intent_id, "created_at": created.created_at,
                "canceled_at": state.canceled_at, "cancel_reason": state.cancel_reason,
                **manage_urls(public_url, signing_secret, created.appointment_id, state.start_at)}
    if isinstance(state.rescheduled_at, str):  # the reschedule fields appear once it has moved
        resource.update(rescheduled_at=state.rescheduled_at, reschedule_reason=state.reschedule_reason,
                        original_start_at=state.original_start_at, original_end_at=state.original_end_at)
    return resource



def service_guards(service: ServiceState, location_id: str | None, account_id: str) -> tuple[str, ...]:
    """The service and location streams a service booking was decided against (their blocks)."""
    assert service.created is not None
    guards = [service_stream(service.created.service_id)]
    if location_id:
        guards.append(location_stream(account_id, location_id))
    return tuple(guards)


def _takes_public_bookings(providers: dict[str, ProviderState], provider_id: str) -> bool:
    provider = providers.get(provider_id)
    return provider is not None and provider.schedule.public_bookings.enabled


def providers_for_slot(service: ServiceState, providers: dict[str, ProviderState], location: LocationState,
                       now: int, start: int, provider_id: str | None,
                       exclude: tuple[str, ...] = (), public: bool = False) -> ServiceProviderInfo:
    """The service_provider that takes a booking at `start`: the one asked for, or the least busy that day.

    `public` (the public service page): only providers whose schedule has public bookings enabled.
    """
    candidates = service.ordered_providers()
    if provider_id is not None:
        chosen = service.by_provider(provider_id)
        if chosen is None:
            raise ValidationFailed.on("provider_id", "does not offer this service")
        if public and not _takes_public_bookings(providers, provider_id):
            raise ValidationFailed.on("provider_id", "does not take public bookings")
        candidates = [chosen]
    if public:
        candidates = [sp for sp in candidates if _takes_public_bookings(providers, sp.provider_id)]
    calendars = [
        providers[sp.provider_id].host_calendar(now, exclude, service.blocked_for(sp.service_provider_id)
                                                + location.busy())
        for sp in candidates if sp.provider_id in providers and providers[sp.provider_id].exists
    ]
    free = service_free_providers(service.rules(), calendars, now, start)
    if not free:
        raise ValidationFailed.on("start_at", NOT_A_SLOT)
    assert service.created is not None
    rules = LinkRules(time_zone=service.created.time_zone, durations=[service.created.duration])
    chosen_id = choose_host(rules, calendars, free, start)
    chosen_sp = service.by_provider(chosen_id)
    assert chosen_sp is not None
    return chosen_sp


def book_appointment(service: ServiceState, providers: dict[str, ProviderState], location: LocationState,
                     env: Env, *, start: int, provider_id: str | None, client: Client,
                     booking_intent_id: str | None = None, exclude: tuple[str, ...] = (),
                     decided_at: int | None = None,
                     public: bool = False) -> tuple[list[tuple[str, list[Event]]], AppointmentState]:
    """The events of a new appointment at `start`: the provider's reservation and the appointment."""
    created_service = service.created
    assert created_service is not None
    now = decided_at if decided_at is not None else int(env.now.timestamp())
    sp = providers_for_slot(service, providers, location, now, start, provider_id, exclude, public)
    end = start + created_service.duration * 60
    created = AppointmentCreated(
        appointment_id=env.new_id("appt"), account_id=created_service.account_id,
        service_id=created_service.service_id, provider_id=sp.provider_id,
        service_provider_id=sp.service_provider_id, start_at=iso_utc(start), end_at=iso_utc(end),
        duration=created_service.duration, client=client, booking_intent_id=booking_intent_id,
        created_at=env.now_iso)
    changes = reserve([sp.provider_id], created.appointment_id, "appointment", start, end)
    changes.append((appointment_stream(created.appointment_id), [created]))
    return changes, evolve_appointment(AppointmentState(), created)


def create_appointment(command: CreateAppointment, service: ServiceState, providers: dict[str, ProviderState],
                       location: LocationState, env: Env) -> Decision:
    """Book a service slot with a provider free at that moment."""
    require_service(service, command.account_id)
    assert service.created is not None
    problems = Problems()
    check_booker(problems, command.display_name, command.email, command.time_zone)
    start = instant(problems, "start_at", command.start_at)
    problems.raise_if_any()
    assert start is not None
    client = Client(display_name=command.display_name, email=command.email, time_zone=command.time_zone)
    changes, booked = book_appointment(service, providers, location, env, start=start,
                                       provider_id=command.provider_id, client=client, public=command.public)
    return Decision(changes, appointment_resource(booked, env.public_url, env.signing_secret),
                    guards=service_guards(service, service.created.location_id, service.created.account_id))


def cancel_appointment(command: CancelAppointment, state: AppointmentState, env: Env) -> Decision:
    """Cancel a confirmed appointment and free its provider's time."""
    created = state.created
    if created is None or created.account_id != command.account_id:
        raise NotFound("appointment")
    if state.state == "canceled":
        raise ValidationFailed.on("appointment_id", "the appointment is already canceled")
    canceled = AppointmentCanceled(appointment_id=created.appointment_id, canceled_at=env.now_iso,
                                   cancel_reason=command.cancel_reason)
    changes = release([created.provider_id], created.appointment_id)
    changes.append((appointment_stream(created.appointment_id), [canceled]))
    return Decision(changes, appointment_resource(evolve_appointment(state, canceled), env.public_url, env.signing_secret))


def reschedule_appointment(command: RescheduleAppointment, state: AppointmentState, service: ServiceState,
                           providers: dict[str, ProviderState], location: LocationState, env: Env) -> Decision:
    """Move a confirmed appointment to a service slot free at this moment with the same provider.

    Its own time does not count as busy; the provider's reservation moves (`ReservationMoved`, appended
    with the calendar's version read, so a concurrent booking of the new time loses and re-decides).
    """
    created = state.created
    if created is None or created.account_id != command.account_id:
        raise NotFound("appointment")
    if state.state == "canceled":
        raise ValidationFailed.on("appointment_id", "a canceled appointment cannot be rescheduled")
    if not service.exists or service.created is None:
        raise ValidationFailed.on("appointment_id", "the appointment's service no longer exists")
    if service.by_provider(created.provider_id) is None:
        raise ValidationFailed.on("appointment_id", "its provider no longer offers the service")
    problems = Problems()
    start = instant(problems, "start_at", command.start_at)
    problems.raise_if_any()
    assert start is not None
    providers_for_slot(service, providers, location, int(env.now.timestamp()), start, created.provider_id,
                       exclude=(created.appointment_id,))
    rescheduled = AppointmentRescheduled(
        appointment_id=created.appointment_id, start_at=iso_utc(start),
        end_at=iso_utc(start + created.duration * 60), rescheduled_at=env.now_iso,
        reschedule_reason=command.reschedule_reason)
    changes = move([created.provider_id], created.appointment_id, rescheduled.start_at, rescheduled.end_at)
    changes.append((appointment_stream(created.appointment_id), [rescheduled]))
    return Decision(changes, appointment_resource(evolve_appointment(state, rescheduled), env.public_url,
                                                  env.signing_secret),
                    guards=service_guards(service, service.created.location_id, service.created.account_id))
