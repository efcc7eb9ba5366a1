"""Domain events: frozen msgspec Structs in one tagged union, decoded once by a typed decoder.

A new field always gets a default so that events already in the log still decode.
"""

from __future__ import annotations

import msgspec

from shared.availability.model import AvailabilityRule, ProviderSchedule


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every domain event."""


# --- account directory: stream account-<acct_id> -------------------------------------------------

class AccountCreated(Event, tag="account_created", kw_only=True):
    account_id: str
    name: str
    created_at: str


class UserCreated(Event, tag="user_created", kw_only=True):
    user_id: str
    name: str
    email: str
    provider_id: str
    personal_scope_id: str
    personal_scope_slug: str
    created_at: str


class ApiTokenIssued(Event, tag="api_token_issued", kw_only=True):
    token_id: str
    user_id: str
    token_hash: str  # sha256 hex of the token; the token itself is never stored
    created_at: str


class TeamScopeCreated(Event, tag="team_scope_created", kw_only=True):
    scope_id: str
    name: str
    slug: str
    member_user_ids: list[str] = []
    created_at: str


# --- providers: stream provider-<prov_id> --------------------------------------------------------

class ProviderCreated(Event, tag="provider_created", kw_only=True):
    provider_id: str
    account_id: str
    display_name: str
    email: str | None = None
    time_zone: str
    user_id: str | None = None
    created_at: str


class ProviderScheduleSet(Event, tag="provider_schedule_set", kw_only=True):
    provider_id: str
    schedule: ProviderSchedule


# --- links: stream link-<link_id>, slug reservations linkslug-<acct>-<slug> ----------------------

class ScopeRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    slug: str


class LinkSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Every writable field of a scheduling link (DESIGN.md section 6), defaults applied."""

    name: str
    slug: str
    private_name: str | None = None
    description: str | None = None
    type: str = "recurring"
    state: str = "active"
    durations: list[int] = msgspec.field(default_factory=lambda: [30])
    default_duration: int = 30
    increment: int = 15
    buffer_before: int = 0
    buffer_after: int = 0
    minimum_notice: int = 0
    maximum_days_ahead: int = 60
    time_zone: str = "Etc/UTC"
    availability: list[AvailabilityRule] = []
    hosts: list[str] = []
    host_mode: str = "any"


class LinkCreated(Event, tag="link_created", kw_only=True):
    link_id: str
    account_id: str
    scope: ScopeRef
    settings: LinkSettings
    created_at: str


class LinkUpdated(Event, tag="link_updated", kw_only=True):
    link_id: str
    settings: LinkSettings
    updated_at: str


class LinkToggled(Event, tag="link_toggled", kw_only=True):
    link_id: str
    state: str
    updated_at: str


class LinkDeleted(Event, tag="link_deleted", kw_only=True):
    link_id: str
    deleted_at: str


class LinkSlugClaimed(Event, tag="link_slug_claimed", kw_only=True):
    link_id: str
    slug: str


class LinkSlugReleased(Event, tag="link_slug_released", kw_only=True):
    link_id: str
    slug: str


DomainEvent = (
    AccountCreated | UserCreated | ApiTokenIssued | TeamScopeCreated
    | ProviderCreated | ProviderScheduleSet
    | LinkCreated | LinkUpdated | LinkToggled | LinkDeleted | LinkSlugClaimed | LinkSlugReleased
)

_decoder = msgspec.json.Decoder(DomainEvent)
_encoder = msgspec.json.Encoder()


def decode_event(data: bytes) -> Event:
    """Decode one stored event body."""
    return _decoder.decode(data)  # type: ignore[no-any-return]


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def event_type(event: Event) -> str:
    """The event's type tag, e.g. `link_created`."""
    return type(event).__struct_config__.tag  # type: ignore[return-value]
