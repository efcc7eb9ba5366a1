"""Commands: imperative msgspec Structs, one per NATS subject `sched.cmd.<snake_case_name>`.

Every command carries `command_id` (the idempotency key) and the acting `account_id`/`user_id`.
Optional fields default to UNSET so that "absent" (keep / use the default) differs from null.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from shared.availability.model import AvailabilityRule, DateOverride, PublicBookings, SlotRule, WeeklyRule


class Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every command."""

    command_id: str
    account_id: str | None = None
    user_id: str | None = None


# --- accounts ------------------------------------------------------------------------------------

class CreateAccount(Command, frozen=True, kw_only=True):
    """A tenant with its first user (who is also a provider), personal scope and API token."""

    name: str
    email: str
    time_zone: str = "Etc/UTC"
    team_slug: str | None = None
    team_name: str | None = None


class CreateUser(Command, frozen=True, kw_only=True):
    """Add a user to the account; every user is also a provider with a calendar."""

    name: str
    email: str
    time_zone: str = "Etc/UTC"


class IssueApiToken(Command, frozen=True, kw_only=True):
    """A new personal API token for `for_user_id` (default: the acting user)."""

    for_user_id: str | None = None


class CreateTeamScope(Command, frozen=True, kw_only=True):
    """Create a team scope of these users; the acting user is always a member."""

    name: str
    slug: str
    member_user_ids: list[str] = []


# --- providers -----------------------------------------------------------------------------------

class CreateProvider(Command, frozen=True, kw_only=True):
    """Create a bookable person or resource with the default schedule."""

    display_name: str
    email: str | None = None
    time_zone: str = "Etc/UTC"


class SetProviderSchedule(Command, frozen=True, kw_only=True):
    """Set a provider's schedule; a field left out keeps its current value, null clears a date bound."""

    provider_id: str
    time_zone: str | UnsetType = UNSET
    weekly_rules: list[WeeklyRule] | UnsetType = UNSET
    date_overrides: list[DateOverride] | UnsetType = UNSET
    effective_from: str | None | UnsetType = UNSET
    effective_until: str | None | UnsetType = UNSET
    public_bookings: PublicBookings | UnsetType = UNSET


# --- links ---------------------------------------------------------------------------------------

def _one_of(*values: str) -> msgspec.Meta:
    """Document a text field's allowed values; the decider names a wrong one together with the others."""
    return msgspec.Meta(extra_json_schema={"enum": list(values)})


LinkType = Annotated[str, _one_of("recurring", "single")]
LinkStateName = Annotated[str, _one_of("active", "disabled")]
HostMode = Annotated[str, _one_of("any", "all")]
WebhookEventType = Annotated[str, _one_of(
    "event.created", "event.canceled", "event.rescheduled", "appointment.created", "appointment.canceled",
    "link.created", "link.updated", "link.deleted", "booking_intent.expired")]
AttachmentType = Annotated[str, _one_of("provider", "service", "service_provider", "location")]

class LinkFields(Command, frozen=True, kw_only=True):
    """The writable link fields; UNSET means "not given"."""

    name: str | UnsetType = UNSET
    private_name: str | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    type: LinkType | UnsetType = UNSET
    state: LinkStateName | UnsetType = UNSET
    durations: list[int] | UnsetType = UNSET
    default_duration: int | UnsetType = UNSET
    increment: int | UnsetType = UNSET
    buffer_before: int | UnsetType = UNSET
    buffer_after: int | UnsetType = UNSET
    minimum_notice: int | UnsetType = UNSET
    maximum_days_ahead: int | UnsetType = UNSET
    time_zone: str | UnsetType = UNSET
    availability: list[AvailabilityRule] | UnsetType = UNSET
    hosts: list[str] | UnsetType = UNSET
    host_mode: HostMode | UnsetType = UNSET


class CreateLink(LinkFields, frozen=True, kw_only=True):
    """Create a link in the acting user's personal scope, or in the team scope `team_slug`."""

    name: str
    team_slug: str | None = None


class UpdateLink(LinkFields, frozen=True, kw_only=True):
    """Change the given fields of a link (PATCH); the slug stays as created."""

    link_id: str


class ToggleLink(Command, frozen=True, kw_only=True):
    """Switch a link between active and disabled."""

    link_id: str


class DuplicateLink(Command, frozen=True, kw_only=True):
    """Copy a link with every setting, under a new name and slug."""

    link_id: str


class DeleteLink(Command, frozen=True, kw_only=True):
    """Delete a link and free its slug."""

    link_id: str


# --- link events ---------------------------------------------------------------------------------

class CreateEvent(Command, frozen=True, kw_only=True):
    """Book a meeting on a link's slot; the duration is end_at - start_at."""

    link_id: str
    display_name: str
    email: str
    start_at: str
    end_at: str
    time_zone: str
    fields: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}


class CancelEvent(Command, frozen=True, kw_only=True):
    """Cancel a confirmed event and free its hosts' time."""

    event_id: str
    cancel_reason: str | None = None


class RescheduleEvent(Command, frozen=True, kw_only=True):
    """Move a confirmed event to another slot of its link, on the same hosts."""

    event_id: str
    start_at: str
    end_at: str
    reschedule_reason: str | None = None


# --- services, providers' external calendars, blocks ---------------------------------------------

class CreateService(Command, frozen=True, kw_only=True):
    """Create a bookable service: its slot rules say when slots begin, its duration how long they last."""

    name: str
    duration: int
    time_zone: str = "Etc/UTC"
    slot_rules: list[SlotRule] = []
    location_id: str | None = None


class AddServiceProvider(Command, frozen=True, kw_only=True):
    """Let a provider of the account take bookings of the service."""

    service_id: str
    provider_id: str


class RemoveServiceProvider(Command, frozen=True, kw_only=True):
    """Remove by `service_provider_id`, or by `provider_id`."""

    service_id: str
    service_provider_id: str | None = None
    provider_id: str | None = None


class CreateBlock(Command, frozen=True, kw_only=True):
    """Block time on a provider, a service, a service_provider or a location."""

    attachment_type: AttachmentType
    attachment_id: str
    start_at: str
    end_at: str
    reason: str | None = None


class DeleteBlock(Command, frozen=True, kw_only=True):
    """Delete a block, freeing the time it took."""

    block_id: str


class BusyTime(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One external busy time, [start_at, end_at)."""

    start_at: str
    end_at: str


class SyncExternalBusyTimes(Command, frozen=True, kw_only=True):
    """Replace the provider's external busy times inside [from, until)."""

    provider_id: str
    from_: str = msgspec.field(name="from")
    until: str
    busy_times: list[BusyTime] = []


# --- holds (booking intents) and appointments ----------------------------------------------------

class HoldSlot(Command, frozen=True, kw_only=True):
    """Hold a service or link slot for `hold_minutes` so that nobody else can book it meanwhile."""

    service_id: str | None = None
    link_id: str | None = None
    provider_id: str | None = None
    start_at: str
    duration: int | None = None  # links only; default the link's default_duration
    hold_minutes: int = 10


class ReleaseHold(Command, frozen=True, kw_only=True):
    """Abandon an active hold: its time is free again at once."""

    booking_intent_id: str


class CompleteHold(Command, frozen=True, kw_only=True):
    """Book the held slot for this client: an appointment for a service, an event for a link."""

    booking_intent_id: str
    display_name: str
    email: str
    time_zone: str


class ExpireHold(Command, frozen=True, kw_only=True):
    """Mark a hold past its expiry as expired (the sweeper sends it)."""

    booking_intent_id: str


class CreateAppointment(Command, frozen=True, kw_only=True):
    """Book a service slot with `provider_id`, or with a provider free at that moment."""

    service_id: str
    provider_id: str | None = None
    start_at: str
    display_name: str
    email: str
    time_zone: str
    # Booked through the public service page: only providers whose schedule has public bookings enabled.
    public: bool = False


class CancelAppointment(Command, frozen=True, kw_only=True):
    """Cancel a confirmed appointment and free its provider's time."""

    appointment_id: str
    cancel_reason: str | None = None


class RescheduleAppointment(Command, frozen=True, kw_only=True):
    """Move a confirmed appointment to another of its service's slots, with the same provider."""

    appointment_id: str
    start_at: str
    reschedule_reason: str | None = None


# --- webhooks: stream whk-<whk_id> -----------------------------------------------------------------

class CreateWebhook(Command, frozen=True, kw_only=True):
    """Subscribe `url` to the webhook event types in `events`; the reply shows the signing secret once."""

    url: str
    events: list[WebhookEventType]


class DeleteWebhook(Command, frozen=True, kw_only=True):
    """Delete a webhook subscription: nothing more is sent to it."""

    webhook_id: str


class RotateWebhookSecret(Command, frozen=True, kw_only=True):
    """A new signing secret; the old one keeps signing too for `grace_period_seconds` (default 24 h)."""

    webhook_id: str
    grace_period_seconds: int = 86_400


# --- Calendly's Scheduling API and webhook subscriptions (the same streams as above) ---------------

class CalendlyInviteeFields(msgspec.Struct, frozen=True, kw_only=True):
    """Who books through Calendly's `POST /invitees`: `email` and `timezone`, and a name."""

    email: str
    timezone: str
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    text_reminder_number: str | None = None


class CalendlyCommand(Command, frozen=True, kw_only=True):
    """Base of the Calendly commands: URIs are read and built from `base_url` (the caller's `…/calendly`)."""

    base_url: str = ""


class CalendlyCreateInvitee(CalendlyCommand, frozen=True, kw_only=True):
    """Book `invitee` on `event_type` at `start_time`: a CreateEvent of the link's default duration."""

    event_type: str
    start_time: str
    invitee: CalendlyInviteeFields
    location: dict[str, Any] | None = None
    questions_and_answers: list[dict[str, Any]] = []
    tracking: dict[str, Any] = {}
    event_guests: list[str] = []


class CalendlyCancelEvent(CalendlyCommand, frozen=True, kw_only=True):
    """Cancel the scheduled event `uuid`: a CancelEvent."""

    uuid: str
    reason: str | None = None


class CalendlyCreateSchedulingLink(CalendlyCommand, frozen=True, kw_only=True):
    """A single-use booking link for the event type `owner`: a CreateLink copying it with type single."""

    max_event_count: int
    owner: str
    owner_type: str


class CalendlyCreateWebhookSubscription(CalendlyCommand, frozen=True, kw_only=True):
    """Subscribe `url` to `invitee.created` / `invitee.canceled` of an organization or of one user."""

    url: str
    events: list[str]
    organization: str
    scope: str
    user: str | None = None
    group: str | None = None
    signing_key: str | None = None


class CalendlyDeleteWebhookSubscription(CalendlyCommand, frozen=True, kw_only=True):
    """Delete the webhook subscription `uuid`: a DeleteWebhook."""

    uuid: str
