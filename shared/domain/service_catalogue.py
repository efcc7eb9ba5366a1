"""The service catalogue (seed 003): services, the providers that offer them, and locations.

Streams: service-<srv> (settings, providers, service and service_provider blocks), sp-<sp> (which
service and provider a service_provider joins), location-<acct>-<loc> (location blocks).
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.availability import Busy, ServiceRules, parse_instant
from shared.domain.accounts import AccountState, require_account
from shared.domain.core import (
    Decision,
    Env,
    EventTypes,
    location_stream,
    service_provider_stream,
    service_stream,
    unchanged,
)
from shared.domain.providers import ProviderState
from shared.domain.validation import Problems, check_day, check_text, check_time_range, check_zone, parse_date
from shared.errors import NotFound, ValidationFailed
from shared.messages.commands import AddServiceProvider, CreateService, RemoveServiceProvider
from shared.messages.events import (
    BlockAdded,
    BlockRemoved,
    Event,
    LocationReferenced,
    ServiceCreated,
    ServiceProviderAdded,
    ServiceProviderRemoved,
)


class BlockedTime(msgspec.Struct, frozen=True):
    """A block on a service, service_provider or location, in UTC seconds."""

    attachment_type: str
    attachment_id: str
    start: int
    end: int


class ServiceProviderInfo(msgspec.Struct, frozen=True):
    """A provider offering the service, as the service stream knows it."""

    service_provider_id: str
    provider_id: str
    display_name: str


class ServiceState(msgspec.Struct, frozen=True):
    """A service as folded from its stream: settings, providers and the blocks on it."""

    created: ServiceCreated | None = None
    providers: dict[str, ServiceProviderInfo] = {}  # by service_provider id
    blocks: dict[str, BlockedTime] = {}

    @property
    def exists(self) -> bool:
        """Whether the service was ever created."""
        return self.created is not None

    def rules(self) -> ServiceRules:
        """The service's duration, zone and slot rules as the availability engine reads them."""
        assert self.created is not None
        return ServiceRules(duration=self.created.duration, time_zone=self.created.time_zone,
                            slot_rules=self.created.slot_rules)

    def ordered_providers(self) -> list[ServiceProviderInfo]:
        """The service's providers in a stable order (by service_provider id)."""
        return sorted(self.providers.values(), key=lambda sp: sp.service_provider_id)

    def by_provider(self, provider_id: str) -> ServiceProviderInfo | None:
        """The service_provider joining this provider to the service, or None."""
        return next((sp for sp in self.providers.values() if sp.provider_id == provider_id), None)

    def blocked_for(self, service_provider_id: str) -> list[Busy]:
        """Blocks on the service itself and on this service_provider."""
        return [Busy(b.start, b.end) for b in self.blocks.values()
                if b.attachment_type == "service" or b.attachment_id == service_provider_id]


# What a service-<id> stream holds: every type is folded, none is ignored.
SERVICE_STREAM_EVENTS = EventTypes(handles=frozenset({
    ServiceCreated, ServiceProviderAdded, ServiceProviderRemoved, BlockAdded, BlockRemoved,
}))


def evolve_service(state: ServiceState, event: Event) -> ServiceState:
    """The service after one more event."""
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
    return unchanged(state, event, SERVICE_STREAM_EVENTS)


def with_block_event(blocks: dict[str, BlockedTime], event: BlockAdded | BlockRemoved) -> dict[str, BlockedTime]:
    """The blocks of a service or location after a block was added or removed."""
    if isinstance(event, BlockAdded):
        return {**blocks, event.block_id: BlockedTime(event.attachment_type, event.attachment_id,
                                                      parse_instant(event.start_at), parse_instant(event.end_at))}
    return {k: v for k, v in blocks.items() if k != event.block_id}


class ServiceProviderState(msgspec.Struct, frozen=True):
    """A service_provider as folded from its own stream."""

    added: ServiceProviderAdded | None = None
    removed: bool = False


# What a sp-<id> stream holds: every type is folded, none is ignored.
SERVICE_PROVIDER_STREAM_EVENTS = EventTypes(handles=frozenset({ServiceProviderAdded, ServiceProviderRemoved}))


def evolve_service_provider(state: ServiceProviderState, event: Event) -> ServiceProviderState:
    """The service_provider after one more event."""
    match event:
        case ServiceProviderAdded():
            return ServiceProviderState(added=event)
        case ServiceProviderRemoved():
            return msgspec.structs.replace(state, removed=True)
    return unchanged(state, event, SERVICE_PROVIDER_STREAM_EVENTS)


class LocationState(msgspec.Struct, frozen=True):
    """A location named by a service, and the blocks on it."""

    account_id: str = ""
    blocks: dict[str, BlockedTime] = {}

    def busy(self) -> list[Busy]:
        """The blocks on the location as busy time."""
        return [Busy(b.start, b.end) for b in self.blocks.values()]


# What a location-<acct>-<id> stream holds: every type is folded, none is ignored.
LOCATION_STREAM_EVENTS = EventTypes(handles=frozenset({LocationReferenced, BlockAdded, BlockRemoved}))


def evolve_location(state: LocationState, event: Event) -> LocationState:
    """The location after one more event."""
    match event:
        case LocationReferenced():
            return msgspec.structs.replace(state, account_id=event.account_id)
        case BlockAdded() | BlockRemoved():
            return msgspec.structs.replace(state, blocks=with_block_event(state.blocks, event))
    return unchanged(state, event, LOCATION_STREAM_EVENTS)


# --- resources ----------------------------------------------------------------------------------

def service_provider_resource(service_id: str, sp: ServiceProviderInfo) -> dict[str, Any]:
    """The service_provider as the HTTP API returns it."""
    return {"object": "service_provider", "id": sp.service_provider_id, "service_id": service_id,
            "provider": {"object": "provider", "id": sp.provider_id, "display_name": sp.display_name}}


def service_resource(state: ServiceState) -> dict[str, Any]:
    """The service as the HTTP API returns it."""
    created = state.created
    assert created is not None
    return {"object": "service", "id": created.service_id, "name": created.name, "duration": created.duration,
            "time_zone": created.time_zone, "slot_rules": msgspec.to_builtins(created.slot_rules),
            "location_id": created.location_id, "created_at": created.created_at,
            "providers": [service_provider_resource(created.service_id, sp) for sp in state.ordered_providers()]}


# --- services -------------------------------------------------------------------------------------

def require_service(state: ServiceState, account_id: str | None) -> ServiceState:
    """The service, which must exist in the acting account (another account's is "not found")."""
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
    """Stop offering the service with a provider."""
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
