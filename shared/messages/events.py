"""Domain events: frozen msgspec Structs in one tagged union, decoded once by a typed decoder.

A new field always gets a default so that events already in the log still decode.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.availability.model import AvailabilityRule, ProviderSchedule, SlotRule


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every domain event."""


# --- account directory: stream account-<acct_id> -------------------------------------------------

class AccountCreated(Event, tag="account_created", frozen=True, kw_only=True):
    """An account came into being, with the name it was created under."""

    account_id: str
    name: str
    created_at: str


class UserCreated(Event, tag="user_created", frozen=True, kw_only=True):
    """A user joined the account, with their own provider and personal scope."""

    user_id: str
    name: str
    email: str
    provider_id: str
    personal_scope_id: str
    personal_scope_slug: str
    created_at: str


class ApiTokenIssued(Event, tag="api_token_issued", frozen=True, kw_only=True):
    """An API token was issued to a user; only its hash is kept."""

    token_id: str
    user_id: str
    token_hash: str  # sha256 hex of the token; the token itself is never stored
    created_at: str


class TeamScopeCreated(Event, tag="team_scope_created", frozen=True, kw_only=True):
    """A team scope was created: a named, slugged group of the account's users."""

    scope_id: str
    name: str
    slug: str
    member_user_ids: list[str] = []
    created_at: str


# --- providers: stream provider-<prov_id> --------------------------------------------------------

class ProviderCreated(Event, tag="provider_created", frozen=True, kw_only=True):
    """A provider was created: someone whose calendar can be booked."""

    provider_id: str
    account_id: str
    display_name: str
    email: str | None = None
    time_zone: str
    user_id: str | None = None
    created_at: str


class ProviderScheduleSet(Event, tag="provider_schedule_set", frozen=True, kw_only=True):
    """The provider's weekly availability schedule is now this one."""

    provider_id: str
    schedule: ProviderSchedule


# --- links: stream link-<link_id>, slug reservations linkslug-<acct>-<slug> ----------------------

class ScopeRef(msgspec.Struct, frozen=True, kw_only=True):
    """The scope (personal or team) a link belongs to, as copied into its events."""

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


class LinkCreated(Event, tag="link_created", frozen=True, kw_only=True):
    """A scheduling link was created in a scope, with its settings."""

    link_id: str
    account_id: str
    scope: ScopeRef
    settings: LinkSettings
    created_at: str


class LinkUpdated(Event, tag="link_updated", frozen=True, kw_only=True):
    """A link's settings are now these (the whole set, not a patch)."""

    link_id: str
    settings: LinkSettings
    updated_at: str


class LinkToggled(Event, tag="link_toggled", frozen=True, kw_only=True):
    """A link was switched to `state` ("active" or "disabled")."""

    link_id: str
    state: str
    updated_at: str


class LinkDeleted(Event, tag="link_deleted", frozen=True, kw_only=True):
    """A link was deleted."""

    link_id: str
    deleted_at: str


class LinkSlugClaimed(Event, tag="link_slug_claimed", frozen=True, kw_only=True):
    """A link took its slug (on the linkslug-<account>-<slug> reservation stream)."""

    link_id: str
    slug: str


class LinkSlugReleased(Event, tag="link_slug_released", frozen=True, kw_only=True):
    """A link let its slug go, so another link may claim it."""

    link_id: str
    slug: str


# --- provider calendars: stream provider-<prov_id> (the consistency boundary of bookings) --------

class TimeReserved(Event, tag="time_reserved", frozen=True, kw_only=True):
    """Time on a provider's calendar taken by an event, appointment, hold or block (`reservation_id`)."""

    provider_id: str
    reservation_id: str
    kind: str  # "event" | "appointment" | "hold" | "block"
    start_at: str
    end_at: str
    buffer_before: int = 0  # minutes
    buffer_after: int = 0
    expires_at: str | None = None  # holds only


class TimeReleased(Event, tag="time_released", frozen=True, kw_only=True):
    """A reservation on a provider's calendar was given up."""

    provider_id: str
    reservation_id: str


class ReservationMoved(Event, tag="reservation_moved", frozen=True, kw_only=True):
    """A reservation on a provider's calendar now runs from `start_at` to `end_at`."""

    provider_id: str
    reservation_id: str
    start_at: str
    end_at: str


class BusyInterval(msgspec.Struct, frozen=True, kw_only=True):
    """One external busy time, [start_at, end_at)."""

    start_at: str
    end_at: str


class ExternalBusyTimesSynced(Event, tag="external_busy_times_synced", frozen=True, kw_only=True):
    """The provider's connected-calendar busy times inside [from_at, until_at) are now exactly these."""

    provider_id: str
    from_at: str
    until_at: str
    busy_times: list[BusyInterval] = []


# --- link events: stream event-<event_id> ---------------------------------------------------------

class Attendee(msgspec.Struct, frozen=True, kw_only=True):
    """A person on an event (organizer, scheduler or guest), with their booking-form answers."""

    id: str
    email: str | None
    display_name: str
    first_name: str | None = None
    last_name: str | None = None
    phone_number: str | None = None
    time_zone: str
    response_status: str = "confirmed"
    is_organizer: bool = False
    is_scheduler: bool = False
    fields: list[dict[str, Any]] = []


class LinkPreview(msgspec.Struct, frozen=True, kw_only=True):
    """The link an event was booked through, as shown on the event."""

    id: str
    name: str
    private_name: str | None
    slug: str


class EventCreated(Event, tag="event_created", frozen=True, kw_only=True):
    """An event was booked through a link for its hosts (`provider_ids`)."""

    event_id: str
    account_id: str
    link: LinkPreview
    scope: ScopeRef
    provider_ids: list[str]
    organizer: Attendee
    scheduler: Attendee
    summary: str
    description: str | None = None
    start_at: str
    end_at: str
    duration: int
    buffer_before: int = 0
    buffer_after: int = 0
    metadata: dict[str, Any] = {}
    booking_intent_id: str | None = None
    created_at: str


class EventCanceled(Event, tag="event_canceled", frozen=True, kw_only=True):
    """An event was canceled, with the reason given if any."""

    event_id: str
    canceled_at: str
    cancel_reason: str | None = None


class EventRescheduled(Event, tag="event_rescheduled", frozen=True, kw_only=True):
    """An event moved to a new time, with the reason given if any."""

    event_id: str
    start_at: str
    end_at: str
    rescheduled_at: str
    reschedule_reason: str | None = None


# --- services: service-<srv_id>, sp-<sp_id>, location-<acct>-<loc_id> ------------------------------

class ServiceCreated(Event, tag="service_created", frozen=True, kw_only=True):
    """A service was created: a bookable duration, slot rules and an optional location."""

    service_id: str
    account_id: str
    name: str
    duration: int
    time_zone: str
    slot_rules: list[SlotRule]
    location_id: str | None = None
    created_at: str


class ServiceProviderAdded(Event, tag="service_provider_added", frozen=True, kw_only=True):
    """A provider now offers the service, as the service provider `service_provider_id`."""

    service_id: str
    service_provider_id: str
    provider_id: str
    display_name: str


class ServiceProviderRemoved(Event, tag="service_provider_removed", frozen=True, kw_only=True):
    """A provider no longer offers the service."""

    service_id: str
    service_provider_id: str
    provider_id: str


class LocationReferenced(Event, tag="location_referenced", frozen=True, kw_only=True):
    """A service named this location: blocks may now be attached to it."""

    account_id: str
    location_id: str


# --- blocks: stream blk-<blk_id>, plus BlockAdded/BlockRemoved on the attachment's stream -----------

class BlockCreated(Event, tag="block_created", frozen=True, kw_only=True):
    """A block was created: time taken out of a provider, service, service provider or location."""

    block_id: str
    account_id: str
    attachment_type: str  # provider | service | service_provider | location
    attachment_id: str
    attachment_stream: str
    start_at: str
    end_at: str
    reason: str | None = None
    created_at: str


class BlockDeleted(Event, tag="block_deleted", frozen=True, kw_only=True):
    """A block was deleted."""

    block_id: str
    deleted_at: str


class BlockAdded(Event, tag="block_added", frozen=True, kw_only=True):
    """A block on a service, service provider or location (provider blocks are TimeReserved)."""

    block_id: str
    attachment_type: str
    attachment_id: str
    start_at: str
    end_at: str


class BlockRemoved(Event, tag="block_removed", frozen=True, kw_only=True):
    """A block on a service, service provider or location was lifted (from its attachment's stream)."""

    block_id: str


# --- appointments: stream appt-<appt_id> -----------------------------------------------------------

class Client(msgspec.Struct, frozen=True, kw_only=True):
    """The person an appointment is for."""

    display_name: str
    email: str
    time_zone: str


class AppointmentCreated(Event, tag="appointment_created", frozen=True, kw_only=True):
    """A client booked an appointment for a service with one of its providers."""

    appointment_id: str
    account_id: str
    service_id: str
    provider_id: str
    service_provider_id: str
    start_at: str
    end_at: str
    duration: int
    client: Client
    booking_intent_id: str | None = None
    created_at: str


class AppointmentCanceled(Event, tag="appointment_canceled", frozen=True, kw_only=True):
    """An appointment was canceled, with the reason given if any."""

    appointment_id: str
    canceled_at: str
    cancel_reason: str | None = None


class AppointmentRescheduled(Event, tag="appointment_rescheduled", frozen=True, kw_only=True):
    """An appointment moved to a new time with the same provider, with the reason given if any."""

    appointment_id: str
    start_at: str
    end_at: str
    rescheduled_at: str
    reschedule_reason: str | None = None


# --- booking intents (holds): stream bi-<bi_id> -----------------------------------------------------

class SlotHeld(Event, tag="slot_held", frozen=True, kw_only=True):
    """A booking intent holds a slot on its providers' calendars until `expires_at`."""

    booking_intent_id: str
    account_id: str
    service_id: str | None = None
    link_id: str | None = None
    provider_ids: list[str]
    start_at: str
    end_at: str
    duration: int
    expires_at: str
    created_at: str


class HoldReleased(Event, tag="hold_released", frozen=True, kw_only=True):
    """An active hold was abandoned: its time is free again at once."""

    booking_intent_id: str
    released_at: str


class HoldCompleted(Event, tag="hold_completed", frozen=True, kw_only=True):
    """A hold became a booking: the appointment or event it turned into."""

    booking_intent_id: str
    completed_at: str
    appointment_id: str | None = None
    event_id: str | None = None


class HoldExpired(Event, tag="hold_expired", frozen=True, kw_only=True):
    """A hold ran out before it was booked."""

    booking_intent_id: str
    expired_at: str


# --- webhooks: stream whk-<whk_id> -----------------------------------------------------------------

class WebhookCreated(Event, tag="webhook_created", frozen=True, kw_only=True, omit_defaults=True):
    """A subscription. The signing secret is not in the log: `secret_id` names it in webhook_secrets."""

    webhook_id: str
    account_id: str
    url: str
    events: list[str] = msgspec.field(default_factory=list)
    secret_id: str
    created_at: str
    # Calendly webhook subscriptions: "organization" or "user" (then only that user's events), and who made it.
    scope: str | None = None
    scope_user_id: str | None = None
    scope_provider_id: str | None = None
    creator_user_id: str | None = None


class WebhookSecretRotated(Event, tag="webhook_secret_rotated", frozen=True, kw_only=True):
    """`secret_id` signs from now on; `previous_secret_id` signs too until `previous_expires_at`."""

    webhook_id: str
    secret_id: str
    previous_secret_id: str
    previous_expires_at: str
    rotated_at: str


class WebhookDeleted(Event, tag="webhook_deleted", frozen=True, kw_only=True):
    """A webhook subscription was deleted."""

    webhook_id: str
    deleted_at: str


DomainEvent = (
    AccountCreated | UserCreated | ApiTokenIssued | TeamScopeCreated
    | ProviderCreated | ProviderScheduleSet
    | LinkCreated | LinkUpdated | LinkToggled | LinkDeleted | LinkSlugClaimed | LinkSlugReleased
    | TimeReserved | TimeReleased | ReservationMoved | ExternalBusyTimesSynced
    | EventCreated | EventCanceled | EventRescheduled
    | ServiceCreated | ServiceProviderAdded | ServiceProviderRemoved | LocationReferenced
    | BlockCreated | BlockDeleted | BlockAdded | BlockRemoved
    | AppointmentCreated | AppointmentCanceled | AppointmentRescheduled
    | SlotHeld | HoldReleased | HoldCompleted | HoldExpired
    | WebhookCreated | WebhookSecretRotated | WebhookDeleted
)

_decoder = msgspec.json.Decoder(DomainEvent)
_encoder = msgspec.json.Encoder()


def decode_event(data: bytes) -> Event:
    """Decode one stored event body."""
    return _decoder.decode(data)  # type: ignore[no-any-return]


def encode_event(event: Event) -> bytes:
    """The stored JSON body of an event."""
    return _encoder.encode(event)


def event_type(event: Event) -> str:
    """The event's type tag, e.g. `link_created`."""
    return type(event).__struct_config__.tag  # type: ignore[return-value]
