"""Services and appointments (seed 003): services, their providers, blocks, holds and appointments.

Streams: service-<srv> (settings, providers, service and service_provider blocks), sp-<sp> (which
service and provider a service_provider joins), location-<acct>-<loc> (location blocks), blk-<blk>
(a block's home, for deleting it), appt-<appt>. Appointments take time on provider-<prov> streams and
guard the service and location streams whose blocks they were decided against.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.availability import Busy, LinkRules, ServiceRules, choose_host, iso_utc, parse_instant, service_free_providers
from shared.domain.accounts import AccountState, require_account
from shared.domain.bookings import (
    NOT_A_SLOT,
    HoldState,
    check_booker,
    held_since,
    hold_expiry,
    instant,
    merge_changes,
    new_hold,
    release,
    reserve,
)
from shared.domain.core import (
    Decision,
    Env,
    appointment_stream,
    block_stream,
    hold_stream,
    location_stream,
    provider_stream,
    service_provider_stream,
    service_stream,
)
from shared.domain.providers import ProviderState, require_provider
from shared.domain.validation import Problems, check_day, check_text, check_time_range, check_zone, parse_date
from shared.errors import NotFound, ValidationFailed
from shared.messages.commands import (
    AddServiceProvider,
    CancelAppointment,
    CreateAppointment,
    CreateBlock,
    CreateService,
    DeleteBlock,
    HoldSlot,
    RemoveServiceProvider,
    SyncExternalBusyTimes,
)
from shared.messages.events import (
    AppointmentCanceled,
    AppointmentCreated,
    BlockAdded,
    BlockCreated,
    BlockDeleted,
    BlockRemoved,
    BusyInterval,
    Client,
    Event,
    ExternalBusyTimesSynced,
    HoldCompleted,
    LocationReferenced,
    ServiceCreated,
    ServiceProviderAdded,
    ServiceProviderRemoved,
    TimeReleased,
)

ATTACHMENT_TYPES = ("provider", "service", "service_provider", "location")


class BlockedTime(msgspec.Struct, frozen=True):
    attachment_type: str
    attachment_id: str
    start: int
    end: int


class ServiceProviderInfo(msgspec.Struct, frozen=True):
    service_provider_id: str
    provider_id: str
    display_name: str


class ServiceState(msgspec.Struct, frozen=True):
    created: ServiceCreated | None = None
    providers: dict[str, ServiceProviderInfo] = {}  # by service_provider id
    blocks: dict[str, BlockedTime] = {}

    @property
    def exists(self) -> bool:
        return self.created is not None

    def rules(self) -> ServiceRules:
        assert self.created is not None
        return ServiceRules(duration=self.created.duration, time_zone=self.created.time_zone,
                            slot_rules=self.created.slot_rules)

    def ordered_providers(self) -> list[ServiceProviderInfo]:
        return sorted(self.providers.values(), key=lambda sp: sp.service_provider_id)

    def by_provider(self, provider_id: str) -> ServiceProviderInfo | None:
        return next((sp for sp in self.providers.values() if sp.provider_id == provider_id), None)

    def blocked_for(self, service_provider_id: str) -> list[Busy]:
        """Blocks on the service itself and on this service_provider."""
        return [Busy(b.start, b.end) for b in self.blocks.values()
                if b.attachment_type == "service" or b.attachment_id == service_provider_id]


def evolve_service(state: ServiceState, event: Event) -> ServiceState:
    match event:
        case ServiceCreated():
            return ServiceState(created=event)
        case ServiceProviderAdded():
            info = ServiceProviderInfo(event.service_provider_id, event.provider_id, event.display_name)
            return msgspec.structs.replace(state, providers={**state.providers, info.service_provider_id: info})
        case ServiceProviderRemoved():
            remaining = {k: v for k, v in state.providers.items() if k != event.service_provider_id}
            return msgspec.structs.replace(state, providers=remaining)
        case BlockAdded() | BlockRemoved():
            return msgspec.structs.replace(state, blocks=with_block_event(state.blocks, event))
    return state


def with_block_event(blocks: dict[str, BlockedTime], event: BlockAdded | BlockRemoved) -> dict[str, BlockedTime]:
    """The blocks of a service or location after a block was added or removed."""
    if isinstance(event, BlockAdded):
        return {**blocks, event.block_id: BlockedTime(event.attachment_type, event.attachment_id,
                                                      parse_instant(event.start_at), parse_instant(event.end_at))}
    return {k: v for k, v in blocks.items() if k != event.block_id}


class ServiceProviderState(msgspec.Struct, frozen=True):
    added: ServiceProviderAdded | None = None
    removed: bool = False


def evolve_service_provider(state: ServiceProviderState, event: Event) -> ServiceProviderState:
    match event:
        case ServiceProviderAdded():
            return ServiceProviderState(added=event)
        case ServiceProviderRemoved():
            return msgspec.structs.replace(state, removed=True)
    return state


class LocationState(msgspec.Struct, frozen=True):
    account_id: str = ""
    blocks: dict[str, BlockedTime] = {}

    def busy(self) -> list[Busy]:
        return [Busy(b.start, b.end) for b in self.blocks.values()]


def evolve_location(state: LocationState, event: Event) -> LocationState:
    match event:
        case LocationReferenced():
            return msgspec.structs.replace(state, account_id=event.account_id)
        case BlockAdded() | BlockRemoved():
            return msgspec.structs.replace(state, blocks=with_block_event(state.blocks, event))
    return state


class BlockState(msgspec.Struct, frozen=True):
    created: BlockCreated | None = None
    deleted: bool = False


def evolve_block(state: BlockState, event: Event) -> BlockState:
    match event:
        case BlockCreated():
            return BlockState(created=event)
        case BlockDeleted():
            return msgspec.structs.replace(state, deleted=True)
    return state


class AppointmentState(msgspec.Struct, frozen=True):
    created: AppointmentCreated | None = None
    state: str = "confirmed"
    canceled_at: str | None = None
    cancel_reason: str | None = None


def evolve_appointment(state: AppointmentState, event: Event) -> AppointmentState:
    match event:
        case AppointmentCreated():
            return AppointmentState(created=event)
        case AppointmentCanceled():
            return msgspec.structs.replace(state, state="canceled", canceled_at=event.canceled_at,
                                           cancel_reason=event.cancel_reason)
    return state


# --- resources ----------------------------------------------------------------------------------

def service_provider_resource(service_id: str, sp: ServiceProviderInfo) -> dict[str, Any]:
    return {"object": "service_provider", "id": sp.service_provider_id, "service_id": service_id,
            "provider": {"object": "provider", "id": sp.provider_id, "display_name": sp.display_name}}


def service_resource(state: ServiceState) -> dict[str, Any]:
    created = state.created
    assert created is not None
    return {"object": "service", "id": created.service_id, "name": created.name, "duration": created.duration,
            "time_zone": created.time_zone, "slot_rules": msgspec.to_builtins(created.slot_rules),
            "location_id": created.location_id, "created_at": created.created_at,
            "providers": [service_provider_resource(created.service_id, sp) for sp in state.ordered_providers()]}


def appointment_resource(state: AppointmentState) -> dict[str, Any]:
    created = state.created
    assert created is not None
    return {"object": "appointment", "id": created.appointment_id, "state": state.state,
            "service_id": created.service_id, "provider_id": created.provider_id,
            "service_provider_id": created.service_provider_id, "start_at": created.start_at,
            "end_at": created.end_at, "duration": created.duration, "client": msgspec.to_builtins(created.client),
            "booking_intent_id": created.booking_intent_id, "created_at": created.created_at,
            "canceled_at": state.canceled_at, "cancel_reason": state.cancel_reason}


def block_resource(created: BlockCreated, deleted: bool = False) -> dict[str, Any]:
    return {"object": "block", "id": created.block_id, "attachment_type": created.attachment_type,
            "attachment_id": created.attachment_id, "start_at": created.start_at, "end_at": created.end_at,
            "reason": created.reason, "created_at": created.created_at, "deleted": deleted}


# --- services -------------------------------------------------------------------------------------

def require_service(state: ServiceState, account_id: str | None) -> ServiceState:
    if not state.exists or state.created is None or state.created.account_id != account_id:
        raise NotFound("service")
    return state


def create_service(command: CreateService, account: AccountState, location: LocationState,
                   env: Env) -> Decision:
    """A bookable service; its slot rules say when slots begin, its duration how long they last."""
    require_account(account, command.account_id)
    problems = Problems()
    check_text(problems, "name", command.name, required=True)
    problems.check(1 <= command.duration <= 1440, "duration", "must be 1 to 1440 minutes")
    check_zone(problems, "time_zone", command.time_zone)
    for i, rule in enumerate(command.slot_rules):
        field = f"slot_rules[{i}]"
        problems.check(bool(rule.days_of_week), f"{field}.days_of_week", "must list at least one day")
        for day in rule.days_of_week:
            check_day(problems, f"{field}.days_of_week", day)
        check_time_range(problems, field, rule.start_time, rule.end_time)
        if rule.interval is not None:
            problems.check(1 <= rule.interval <= 1440, f"{field}.interval", "must be 1 to 1440 minutes")
        for name in ("starts_on", "ends_on"):
            value = getattr(rule, name)
            problems.check(value is None or parse_date(value) is not None, f"{field}.{name}",
                           "must be a date YYYY-MM-DD")
        if rule.starts_on and rule.ends_on and parse_date(rule.starts_on) and parse_date(rule.ends_on):
            problems.check(rule.starts_on <= rule.ends_on, f"{field}.ends_on", "must not be before starts_on")
    if command.location_id is not None:
        check_text(problems, "location_id", command.location_id, required=True, max_length=100)
    problems.raise_if_any()
    created = ServiceCreated(service_id=env.new_id("srv"), account_id=account.account_id, name=command.name,
                             duration=command.duration, time_zone=command.time_zone, slot_rules=command.slot_rules,
                             location_id=command.location_id, created_at=env.now_iso)
    changes: list[tuple[str, list[Event]]] = [(service_stream(created.service_id), [created])]
    if command.location_id is not None and not location.account_id:
        changes.append((location_stream(account.account_id, command.location_id),
                        [LocationReferenced(account_id=account.account_id, location_id=command.location_id)]))
    return Decision(changes, service_resource(evolve_service(ServiceState(), created)))


def add_service_provider(command: AddServiceProvider, service: ServiceState, provider: ProviderState,
                         env: Env) -> Decision:
    """Offer the service with one more provider: a service_provider."""
    require_service(service, command.account_id)
    if not provider.exists or provider.account_id != command.account_id:
        raise ValidationFailed.on("provider_id", "is not a provider of this account")
    if service.by_provider(provider.provider_id):
        raise ValidationFailed.on("provider_id", "already offers this service")
    assert service.created is not None
    added = ServiceProviderAdded(service_id=service.created.service_id, service_provider_id=env.new_id("sp"),
                                 provider_id=provider.provider_id, display_name=provider.display_name)
    info = ServiceProviderInfo(added.service_provider_id, added.provider_id, added.display_name)
    return Decision([(service_stream(added.service_id), [added]),
                     (service_provider_stream(added.service_provider_id), [added])],
                    service_provider_resource(added.service_id, info))


def remove_service_provider(command: RemoveServiceProvider, service: ServiceState, env: Env) -> Decision:
    require_service(service, command.account_id)
    assert service.created is not None
    sp = (service.providers.get(command.service_provider_id) if command.service_provider_id
          else service.by_provider(command.provider_id or ""))
    if sp is None:
        raise NotFound("service_provider")
    removed = ServiceProviderRemoved(service_id=service.created.service_id,
                                     service_provider_id=sp.service_provider_id, provider_id=sp.provider_id)
    return Decision([(service_stream(removed.service_id), [removed]),
                     (service_provider_stream(sp.service_provider_id), [removed])],
                    service_provider_resource(removed.service_id, sp))


# --- blocks ---------------------------------------------------------------------------------------

def create_block(command: CreateBlock, target: ProviderState | ServiceState | LocationState | None,
                 attachment_stream: str, env: Env) -> Decision:
    """Block time on a provider, a service, a service_provider or a location."""
    problems = Problems()
    problems.check(command.attachment_type in ATTACHMENT_TYPES, "attachment_type",
                   "must be one of: provider, service, service_provider, location")
    start = instant(problems, "start_at", command.start_at)
    end = instant(problems, "end_at", command.end_at)
    if start is not None and end is not None:
        problems.check(end > start, "end_at", "must be after start_at")
    check_text(problems, "reason", command.reason, required=False, max_length=1000)
    problems.raise_if_any()
    assert start is not None and end is not None
    account_id = command.account_id or ""
    found = (
        (isinstance(target, ProviderState) and target.exists and target.account_id == account_id)
        or (isinstance(target, ServiceState) and target.created is not None
            and target.created.account_id == account_id
            and (command.attachment_type == "service" or command.attachment_id in target.providers))
        or (isinstance(target, LocationState) and target.account_id == account_id)
    )
    if not found:
        raise ValidationFailed.on("attachment_id", f"is not a known {command.attachment_type} of this account")
    block_id = env.new_id("blk")
    created = BlockCreated(block_id=block_id, account_id=account_id, attachment_type=command.attachment_type,
                           attachment_id=command.attachment_id, attachment_stream=attachment_stream,
                           start_at=iso_utc(start), end_at=iso_utc(end), reason=command.reason,
                           created_at=env.now_iso)
    changes: list[tuple[str, list[Event]]] = [(block_stream(block_id), [created])]
    if isinstance(target, ProviderState):
        changes += reserve([target.provider_id], block_id, "block", start, end)
    else:
        changes.append((attachment_stream, [BlockAdded(block_id=block_id, attachment_type=command.attachment_type,
                                                       attachment_id=command.attachment_id,
                                                       start_at=created.start_at, end_at=created.end_at)]))
    return Decision(changes, block_resource(created))


def delete_block(command: DeleteBlock, state: BlockState, env: Env) -> Decision:
    created = state.created
    if created is None or state.deleted or created.account_id != command.account_id:
        raise NotFound("block")
    removal: Event = (TimeReleased(provider_id=created.attachment_id, reservation_id=created.block_id)
                      if created.attachment_type == "provider" else BlockRemoved(block_id=created.block_id))
    return Decision([(block_stream(created.block_id), [BlockDeleted(block_id=created.block_id,
                                                                    deleted_at=env.now_iso)]),
                     (created.attachment_stream, [removal])], block_resource(created, deleted=True))


# --- external busy times ----------------------------------------------------------------------------

def sync_external_busy_times(command: SyncExternalBusyTimes, provider: ProviderState, env: Env) -> Decision:
    """Replace the provider's connected-calendar busy times inside [from, until)."""
    require_provider(provider, command.account_id)
    problems = Problems()
    start = instant(problems, "from", command.from_)
    end = instant(problems, "until", command.until)
    if start is not None and end is not None:
        problems.check(end > start, "until", "must be after from")
        problems.check(end - start <= 400 * 86400, "until", "must be at most 400 days after from")
    problems.check(len(command.busy_times) <= 5000, "busy_times", "must list at most 5000 intervals")
    for i, busy in enumerate(command.busy_times):
        a = instant(problems, f"busy_times[{i}].start_at", busy.start_at)
        b = instant(problems, f"busy_times[{i}].end_at", busy.end_at)
        if a is not None and b is not None:
            problems.check(b > a, f"busy_times[{i}].end_at", "must be after start_at")
    problems.raise_if_any()
    assert start is not None and end is not None
    event = ExternalBusyTimesSynced(
        provider_id=provider.provider_id, from_at=iso_utc(start), until_at=iso_utc(end),
        busy_times=[BusyInterval(start_at=iso_utc(parse_instant(b.start_at)), end_at=iso_utc(parse_instant(b.end_at)))
                    for b in command.busy_times])
    inside = [b for b in event.busy_times if parse_instant(b.end_at) > start and parse_instant(b.start_at) < end]
    return Decision([(provider_stream(provider.provider_id), [event])],
                    {"provider_id": provider.provider_id, "from": event.from_at, "until": event.until_at,
                     "busy_times": msgspec.to_builtins(inside)})


# --- appointments and service holds -------------------------------------------------------------------

def _service_guards(service: ServiceState, location_id: str | None, account_id: str) -> tuple[str, ...]:
    assert service.created is not None
    guards = [service_stream(service.created.service_id)]
    if location_id:
        guards.append(location_stream(account_id, location_id))
    return tuple(guards)


def providers_for_slot(service: ServiceState, providers: dict[str, ProviderState], location: LocationState,
                       now: int, start: int, provider_id: str | None,
                       exclude: tuple[str, ...] = ()) -> ServiceProviderInfo:
    """The service_provider that takes a booking at `start`: the one asked for, or the least busy that day."""
    candidates = service.ordered_providers()
    if provider_id is not None:
        chosen = service.by_provider(provider_id)
        if chosen is None:
            raise ValidationFailed.on("provider_id", "does not offer this service")
        candidates = [chosen]
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
                     decided_at: int | None = None) -> tuple[list[tuple[str, list[Event]]], AppointmentState]:
    created_service = service.created
    assert created_service is not None
    now = decided_at if decided_at is not None else int(env.now.timestamp())
    sp = providers_for_slot(service, providers, location, now, start, provider_id, exclude)
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
                                       provider_id=command.provider_id, client=client)
    return Decision(changes, appointment_resource(booked),
                    guards=_service_guards(service, service.created.location_id, service.created.account_id))


def cancel_appointment(command: CancelAppointment, state: AppointmentState, env: Env) -> Decision:
    created = state.created
    if created is None or created.account_id != command.account_id:
        raise NotFound("appointment")
    if state.state == "canceled":
        raise ValidationFailed.on("appointment_id", "the appointment is already canceled")
    canceled = AppointmentCanceled(appointment_id=created.appointment_id, canceled_at=env.now_iso,
                                   cancel_reason=command.cancel_reason)
    changes = release([created.provider_id], created.appointment_id)
    changes.append((appointment_stream(created.appointment_id), [canceled]))
    return Decision(changes, appointment_resource(evolve_appointment(state, canceled)))


def hold_service_slot(command: HoldSlot, service: ServiceState, providers: dict[str, ProviderState],
                      location: LocationState, env: Env) -> Decision:
    """Hold a service slot with one provider until it expires."""
    require_service(service, command.account_id)
    assert service.created is not None
    problems = Problems()
    start = instant(problems, "start_at", command.start_at)
    if command.duration is not None and command.duration != service.created.duration:
        problems.add("duration", "a service slot lasts the service's duration")
    problems.raise_if_any()
    assert start is not None
    expires_at = hold_expiry(command, env)
    sp = providers_for_slot(service, providers, location, int(env.now.timestamp()), start, command.provider_id)
    decision = new_hold(env, service.created.account_id, [sp.provider_id], start, service.created.duration,
                        expires_at, service_id=service.created.service_id)
    return decision._replace(guards=_service_guards(service, service.created.location_id,
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
    return Decision(changes, appointment_resource(booked),
                    guards=_service_guards(service, service.created.location_id, service.created.account_id))
