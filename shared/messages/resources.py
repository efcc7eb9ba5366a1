"""Replies: one frozen msgspec Struct per resource the HTTP API and the NATS replies return.

Each Struct describes exactly what today's resource functions produce (`link_resource`,
`event_resource`, `hold_resource`, `appointment_resource`, `service_resource`, `provider_resource`,
`block_resource`, `webhook_resource`, the query service's slots, lists and Calendly shapes): every
key, its JSON type and whether it can be null. `tests/unit/test_resource_shapes.py` converts real
results into them strictly and back, so a key added to a function without its Struct fails there.

Requests live in `shared.messages.commands` and the query service; a reply whose natural name is
taken by a request or an event carries a suffix (`EarliestSlotReply`) or a qualifier
(`BookedEvent`, `EventAttendee`). A key that only some replies carry is `X | UnsetType = UNSET`.
Fields that are always null today keep the type the seeds give them, so a client's schema stays
right once they are filled.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType


class Reply(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every reply shape: immutable, keyword-only, no key beyond the declared ones."""


LinkType = Literal["recurring", "single"]
LinkStateName = Literal["active", "disabled"]
HostMode = Literal["any", "all"]
DayOfWeek = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
EventStateName = Literal["confirmed", "canceled"]
AppointmentStateName = Literal["confirmed", "canceled"]
BookingIntentStateName = Literal["active", "completed", "abandoned", "expired"]
AttachmentType = Literal["provider", "service", "service_provider", "location"]
WebhookStateName = Literal["active", "failing", "deleted"]
DeliveryStateName = Literal["pending", "delivered", "dead", "canceled"]
WebhookEventType = Literal[
    "event.created", "event.canceled", "event.rescheduled", "appointment.created", "appointment.canceled",
    "link.created", "link.updated", "link.deleted", "booking_intent.expired",
]


# --- lists ----------------------------------------------------------------------------------------

class ListMetadata(Reply, frozen=True, kw_only=True):
    """Keyset cursors of one page: `before` and `after` are null at either end of the list."""

    before: str | None
    after: str | None
    limit: int


# --- accounts and users ---------------------------------------------------------------------------

class NewAccount(Reply, frozen=True, kw_only=True):
    """create_account's result: the new tenant's ids and its first API token (null when replayed)."""

    account_id: str
    user_id: str
    provider_id: str
    personal_scope_id: str
    token: str | None
    team_scope_id: str | UnsetType = UNSET  # only when the account was created with a team scope


class User(Reply, frozen=True, kw_only=True):
    """create_user's result: a user of the account (every user is also a provider)."""

    id: str
    name: str
    email: str
    provider_id: str
    personal_scope_id: str


class ApiToken(Reply, frozen=True, kw_only=True):
    """issue_api_token's result; `token` is shown once and is null in a replayed reply."""

    id: str
    user_id: str
    token: str | None


class TeamScope(Reply, frozen=True, kw_only=True):
    """create_team_scope's result: a team scope and its members."""

    id: str
    name: str
    slug: str
    member_user_ids: list[str]


class Me(Reply, frozen=True, kw_only=True):
    """GET /v1/me: the user behind the token."""

    id: str
    display_name: str
    email: str
    provider_id: str
    account_id: str
    personal_scope_id: str


class Caller(Reply, frozen=True, kw_only=True):
    """The `whoami` query (gateway only): the account and user a token acts as."""

    account_id: str
    user_id: str


class KnownAccount(Reply, frozen=True, kw_only=True):
    """The `account_exists` query (gateway only): the public account header names a real account."""

    account_id: str


# --- providers ------------------------------------------------------------------------------------

class ScheduleWeeklyRule(Reply, frozen=True, kw_only=True):
    """One weekly working-hours interval of a provider."""

    day_of_week: DayOfWeek
    start_time: str
    end_time: str


class ScheduleInterval(Reply, frozen=True, kw_only=True):
    """A wall-clock interval of a date override."""

    start_time: str
    end_time: str


class ScheduleDateOverride(Reply, frozen=True, kw_only=True):
    """A date whose hours replace the weekly rules; no intervals is a day off."""

    date: str
    intervals: list[ScheduleInterval]


class SchedulePublicBookings(Reply, frozen=True, kw_only=True):
    """Whether the public service-slot endpoints show this provider."""

    enabled: bool


class Schedule(Reply, frozen=True, kw_only=True):
    """A provider's working-hours schedule."""

    time_zone: str
    weekly_rules: list[ScheduleWeeklyRule]
    date_overrides: list[ScheduleDateOverride]
    effective_from: str | None
    effective_until: str | None
    public_bookings: SchedulePublicBookings


class Provider(Reply, frozen=True, kw_only=True):
    """A bookable person or resource (create_provider, set_provider_schedule, provider_get)."""

    object: Literal["provider"]
    id: str
    display_name: str
    email: str | None
    time_zone: str
    user_id: str | None
    created_at: str
    schedule: Schedule


class ExternalBusyTime(Reply, frozen=True, kw_only=True):
    """One busy interval of a provider's connected calendar."""

    start_at: str
    end_at: str


class SyncedBusyTimes(Reply, frozen=True, kw_only=True):
    """sync_external_busy_times' result: the window replaced and the busy times now inside it."""

    provider_id: str
    from_: str = msgspec.field(name="from")
    until: str
    busy_times: list[ExternalBusyTime]


# --- links ----------------------------------------------------------------------------------------

class Scope(Reply, frozen=True, kw_only=True):
    """A personal or team scope as links and events show it."""

    id: str
    name: str
    slug: str


class LinkAvailabilityRule(Reply, frozen=True, kw_only=True):
    """A weekly interval in which the link offers slots, ranked (1 = preferred)."""

    day_of_week: DayOfWeek
    start_time: str
    end_time: str
    rank: int


class Link(Reply, frozen=True, kw_only=True):
    """A scheduling link (DESIGN.md section 6)."""

    id: str
    name: str
    slug: str
    private_name: str | None
    description: str | None
    type: LinkType
    state: LinkStateName
    durations: list[int]
    default_duration: int
    increment: int
    buffer_before: int
    buffer_after: int
    minimum_notice: int
    maximum_days_ahead: int
    time_zone: str
    availability: list[LinkAvailabilityRule]
    hosts: list[str]
    host_mode: HostMode
    scope: Scope
    created_at: str
    updated_at: str
    url: str


class LinkList(Reply, frozen=True, kw_only=True):
    """GET /v1/links: one page of links."""

    entries: list[Link]
    metadata: ListMetadata


class LinkSlot(Reply, frozen=True, kw_only=True):
    """One item of GET /v1/links/:id/slots (the reply is a bare array of these)."""

    start_at: str
    end_at: str
    duration: int
    rank: int


LinkSlots = list[LinkSlot]  # the link_slots reply; no wrapper object


# --- link events (seed 002) -----------------------------------------------------------------------

class EventConferencing(Reply, frozen=True, kw_only=True):
    """An event's conferencing details (all null: no conferencing integration yet)."""

    type: str | None
    meeting_id: str | None
    join_url: str | None
    instructions: str | None


class EventLink(Reply, frozen=True, kw_only=True):
    """The scheduling link preview an event was booked on."""

    id: str
    name: str
    private_name: str | None
    slug: str


class EventAttendee(Reply, frozen=True, kw_only=True):
    """An event attendee: the organizer (a host) or the scheduler (the booker)."""

    id: str
    email: str | None
    display_name: str
    first_name: str | None
    last_name: str | None
    phone_number: str | None
    time_zone: str
    response_status: str
    is_organizer: bool
    is_scheduler: bool
    fields: list[dict[str, Any]]


class EventDescriptionSettings(Reply, frozen=True, kw_only=True):
    """Which parts the event body includes (always all three today)."""

    include_attendees: bool
    include_link_name: bool
    include_fields: bool


class BookedEvent(Reply, frozen=True, kw_only=True):
    """A meeting booked on a link: every field of seed 002's Event resource."""

    id: str
    state: EventStateName
    summary: str
    description: str | None
    additional_info: str | None  # always null today
    location: str | None  # always null today (seed 002: a string)
    conferencing: EventConferencing
    created_at: str
    start_at: str
    end_at: str
    duration: int
    canceled_at: str | None
    cancel_reason: str | None
    rescheduled_at: str | None
    reschedule_reason: str | None
    original_start_at: str | None  # null until rescheduled
    original_end_at: str | None
    link: EventLink
    poll: dict[str, Any] | None  # always null today
    scope: Scope
    scheduler: EventAttendee
    organizer: EventAttendee
    attendees: list[EventAttendee]
    payment: dict[str, Any] | None  # always null today
    metadata: dict[str, Any]
    url: str
    location_settings: list[dict[str, Any]]  # always empty today
    description_settings: EventDescriptionSettings
    buffer_before: int
    buffer_after: int
    is_group_session: bool
    maximum_group_size: int
    reschedule_url: str  # signed: the invitee reschedules here without a token (DESIGN.md section 9)
    cancel_url: str  # signed: the invitee cancels here, giving a reason


class EventList(Reply, frozen=True, kw_only=True):
    """GET /v1/events: one page of events."""

    entries: list[BookedEvent]
    metadata: ListMetadata


# --- booking intents (holds) ----------------------------------------------------------------------

class BookingIntent(Reply, frozen=True, kw_only=True):
    """A hold on a link or service slot until `expires_at`."""

    object: Literal["booking_intent"]
    id: str
    state: BookingIntentStateName
    expires_at: str
    provider_id: str
    provider_ids: list[str]
    service_id: str | None
    link_id: str | None
    start_at: str
    end_at: str
    duration: int
    appointment_id: str | None
    event_id: str | None
    created_at: str


# --- services and appointments (seed 003) ---------------------------------------------------------

class ProviderSummary(Reply, frozen=True, kw_only=True):
    """The provider inside a service_provider."""

    object: Literal["provider"]
    id: str
    display_name: str


class ServiceProvider(Reply, frozen=True, kw_only=True):
    """A provider offering a service (add/remove_service_provider, and inside services and slots)."""

    object: Literal["service_provider"]
    id: str
    service_id: str
    provider: ProviderSummary


class ServiceSlotRule(Reply, frozen=True, kw_only=True):
    """When a service's slots start: days, hours, interval, and optional first and last dates."""

    days_of_week: list[DayOfWeek]
    start_time: str
    end_time: str
    interval: int | None
    starts_on: str | None
    ends_on: str | None


class Service(Reply, frozen=True, kw_only=True):
    """A bookable service with its providers."""

    object: Literal["service"]
    id: str
    name: str
    duration: int
    time_zone: str
    slot_rules: list[ServiceSlotRule]
    location_id: str | None
    created_at: str
    providers: list[ServiceProvider]


class AppointmentClient(Reply, frozen=True, kw_only=True):
    """Who booked an appointment."""

    display_name: str
    email: str
    time_zone: str


class Appointment(Reply, frozen=True, kw_only=True):
    """A booked service slot (DESIGN.md section 6)."""

    object: Literal["appointment"]
    id: str
    state: AppointmentStateName
    service_id: str
    provider_id: str
    service_provider_id: str
    start_at: str
    end_at: str
    duration: int
    client: AppointmentClient
    booking_intent_id: str | None
    created_at: str
    canceled_at: str | None
    cancel_reason: str | None
    reschedule_url: str  # signed: the invitee reschedules here without a token (DESIGN.md section 9)
    cancel_url: str  # signed: the invitee cancels here, giving a reason
    # Present once the appointment has been rescheduled (absent before: the shape of older appointments).
    rescheduled_at: str | UnsetType = UNSET
    reschedule_reason: str | None | UnsetType = UNSET
    original_start_at: str | UnsetType = UNSET
    original_end_at: str | UnsetType = UNSET


class CalendarFile(Reply, frozen=True, kw_only=True):
    """An iCalendar file; over HTTP the body is `content` itself, as `text/calendar`."""

    filename: str
    method: Literal["REQUEST", "CANCEL", "PUBLISH"]
    content: str


class FeedUrl(Reply, frozen=True, kw_only=True):
    """A provider's secret iCalendar feed URL (`…/ical/<token>.ics`): anyone holding it sees the bookings."""

    provider_id: str
    url: str


class PublicLinkPage(Reply, frozen=True, kw_only=True):
    """What a link's booking page shows: the link and the account it books in."""

    account_id: str
    link: Link


class ManagedBooking(Reply, frozen=True, kw_only=True):
    """The booking a manage token names: its kind, account and resource (with what its page needs)."""

    kind: Literal["event", "appointment"]
    account_id: str
    event: BookedEvent | None = None
    appointment: Appointment | None = None
    link: Link | None = None
    view_url: str


# complete_hold answers an Appointment (service hold) or a BookedEvent (link hold). The two share no
# tag (a BookedEvent has no `object` key), so msgspec cannot decode them as one union: try each.
COMPLETE_HOLD_REPLIES: tuple[type[Reply], ...] = (Appointment, BookedEvent)


class Block(Reply, frozen=True, kw_only=True):
    """Blocked time on a provider, service, service_provider or location."""

    object: Literal["block"]
    id: str
    attachment_type: AttachmentType
    attachment_id: str
    start_at: str
    end_at: str
    reason: str | None
    created_at: str
    deleted: bool


class ServiceSlot(Reply, frozen=True, kw_only=True):
    """A slot shown in the requested time zone, with absolute timestamps (seed 003's Slot)."""

    object: Literal["slot"]
    start_at: str
    start_at_ts: int
    end_at: str
    end_at_ts: int
    time_zone: str


class AggregatedSlot(Reply, frozen=True, kw_only=True):
    """A slot time with the number of providers free at it."""

    object: Literal["aggregated_slot"]
    start_at: str
    start_at_ts: int
    end_at: str
    end_at_ts: int
    time_zone: str
    count: int


class ProviderSlots(Reply, frozen=True, kw_only=True):
    """One service provider's open slots."""

    service_provider: ServiceProvider
    open: list[ServiceSlot]


class ServiceSlotsData(Reply, frozen=True, kw_only=True):
    """The body of seed 003's ServiceSlotResponse."""

    aggregated_slots: list[AggregatedSlot]
    provider_slots: list[ProviderSlots]


class ServiceSlotsReply(Reply, frozen=True, kw_only=True):
    """GET /v1/services/:id/slots."""

    data: ServiceSlotsData


class PublicServiceSlotsReply(Reply, frozen=True, kw_only=True):
    """GET /v1/public/services/:id/slots: a flat list of slots."""

    data: list[ServiceSlot]


class EarliestSlotReply(Reply, frozen=True, kw_only=True):
    """GET /v1/public/services/:id/earliest_slot: the first slot, or null."""

    data: ServiceSlot | None


# --- webhooks -------------------------------------------------------------------------------------

class Webhook(Reply, frozen=True, kw_only=True):
    """A webhook subscription, without its secret."""

    id: str
    url: str
    events: list[WebhookEventType]
    state: WebhookStateName
    created_at: str
    updated_at: str


class NewWebhook(Reply, frozen=True, kw_only=True):
    """create_webhook's result: the webhook and its signing secret (null in a replayed reply)."""

    id: str
    url: str
    events: list[WebhookEventType]
    state: WebhookStateName
    created_at: str
    updated_at: str
    secret: str | None


class RotatedWebhook(Reply, frozen=True, kw_only=True):
    """rotate_webhook_secret's result: the new secret (null when replayed) and when the old one stops."""

    id: str
    url: str
    events: list[WebhookEventType]
    state: WebhookStateName
    created_at: str
    updated_at: str
    secret: str | None
    previous_secret_expires_at: str


class WebhookList(Reply, frozen=True, kw_only=True):
    """GET /v1/webhooks: one page of webhooks."""

    entries: list[Webhook]
    metadata: ListMetadata


class DeliveryAttempt(Reply, frozen=True, kw_only=True):
    """One try at delivering: an HTTP status, or an error, and how long it took."""

    attempt: int
    attempted_at: str
    status_code: int | None
    error: str | None
    duration_ms: float


class Delivery(Reply, frozen=True, kw_only=True):
    """One domain event's delivery to one webhook, with every attempt."""

    id: str
    webhook_id: str
    event_id: str
    type: WebhookEventType
    state: DeliveryStateName
    attempt_count: int
    created_at: str
    next_attempt_at: str | None  # only while pending
    finished_at: str | None
    attempts: list[DeliveryAttempt]


class DeliveryList(Reply, frozen=True, kw_only=True):
    """GET /v1/webhooks/:id/deliveries: one page of deliveries, newest first."""

    entries: list[Delivery]
    metadata: ListMetadata


class WebhookBody(Reply, frozen=True, kw_only=True):
    """What a delivery POSTs; `payload` is a Link, BookedEvent, Appointment or BookingIntent."""

    type: WebhookEventType
    id: str
    version: int
    occurred_at: str
    payload: dict[str, Any]  # untagged: the resource kind follows from `type`


# --- Calendly (seed 004, and Calendly's API v2 reference) --------------------------------------------
# Field names, types, enums and nullability follow Calendly's reference. A field Calendly types as
# a string that the domain has no value for is "" (never null); a field Calendly documents as
# nullable is null when the domain has no such notion.

class CalendlyPagination(Reply, frozen=True, kw_only=True):
    """Calendly's page links and tokens (null at the ends); `count` is the page size asked for."""

    count: int
    next_page: str | None
    previous_page: str | None
    next_page_token: str | None
    previous_page_token: str | None


class CalendlyUser(Reply, frozen=True, kw_only=True):
    """A Calendly user resource."""

    uri: str
    name: str
    slug: str
    email: str
    scheduling_url: str
    timezone: str
    time_notation: Literal["12h", "24h"]
    avatar_url: str | None  # no avatars in the domain
    created_at: str
    updated_at: str
    current_organization: str
    resource_type: Literal["User"]
    locale: Literal["en", "fr", "es", "de", "nl", "pt", "it", "uk"]


class CalendlyUserReply(Reply, frozen=True, kw_only=True):
    """GET /calendly/users/me and /calendly/users/:uuid."""

    resource: CalendlyUser


class CalendlyOrganization(Reply, frozen=True, kw_only=True):
    """An account as a Calendly organization."""

    uri: str
    name: str
    slug: str
    status: Literal["active"]
    timezone: str
    created_at: str
    updated_at: str
    plan: Literal["basic", "essentials", "standard", "professional", "teams", "enterprise"]
    stage: Literal["trial", "free", "paid"]


class CalendlyOrganizationReply(Reply, frozen=True, kw_only=True):
    """GET /calendly/organizations/:uuid."""

    resource: CalendlyOrganization


class CalendlyProfile(Reply, frozen=True, kw_only=True):
    """The owner of an event type."""

    type: Literal["User", "Team"]
    name: str
    owner: str


class CalendlyLocation(Reply, frozen=True, kw_only=True):
    """A location configuration of an event type (`kind` "custom" only: the domain keeps a text)."""

    kind: str
    location: str | None = None


class CalendlyEventType(Reply, frozen=True, kw_only=True):
    """A link as a Calendly event type."""

    uri: str
    name: str
    active: bool
    booking_method: Literal["instant", "poll"]
    slug: str
    scheduling_url: str
    duration: int
    duration_options: list[int] | None
    kind: Literal["solo", "group"]
    pooling_type: Literal["round_robin", "collective", "multi_pool"] | None
    type: Literal["StandardEventType", "AdhocEventType"]
    color: str
    created_at: str
    updated_at: str
    internal_note: str
    description_plain: str
    description_html: str
    profile: CalendlyProfile | None
    secret: bool
    deleted_at: str | None
    admin_managed: bool
    locations: list[CalendlyLocation] | None
    position: int
    custom_questions: list[dict[str, Any]]  # the domain has no booking questions
    kind_description: Literal["Collective", "Group", "One-on-One", "Round Robin"]
    locale: Literal["en", "fr", "es", "de", "nl", "pt", "it", "uk"]
    start_time_increment: int | None  # minutes between possible start times: the link's increment
    before_buffer: int  # minutes kept free before and after each meeting: the link's buffers
    after_buffer: int


class CalendlyEventTypeReply(Reply, frozen=True, kw_only=True):
    """GET /calendly/event_types/:uuid."""

    resource: CalendlyEventType


class CalendlyEventTypes(Reply, frozen=True, kw_only=True):
    """GET /calendly/event_types."""

    collection: list[CalendlyEventType]
    pagination: CalendlyPagination


class CalendlyAvailableTime(Reply, frozen=True, kw_only=True):
    """A rank-1 start time of a link's default duration."""

    status: Literal["available"]
    invitees_remaining: int
    start_time: str
    scheduling_url: str


class CalendlyAvailableTimes(Reply, frozen=True, kw_only=True):
    """GET /calendly/event_type_available_times (no pagination)."""

    collection: list[CalendlyAvailableTime]


class CalendlyMembership(Reply, frozen=True, kw_only=True):
    """A user's membership of the organization (the account)."""

    uri: str
    role: Literal["user", "admin", "owner"]
    user: CalendlyUser
    organization: str
    created_at: str
    updated_at: str


class CalendlyMembershipReply(Reply, frozen=True, kw_only=True):
    """GET /calendly/organization_memberships/:uuid."""

    resource: CalendlyMembership


class CalendlyMemberships(Reply, frozen=True, kw_only=True):
    """GET /calendly/organization_memberships."""

    collection: list[CalendlyMembership]
    pagination: CalendlyPagination


class CalendlyInterval(Reply, frozen=True, kw_only=True):
    """A wall-clock interval of an availability rule."""

    from_: str = msgspec.field(name="from")
    to: str


class CalendlyAvailabilityRule(Reply, frozen=True, kw_only=True):
    """A `wday` rule (with `date` null) or a `date` rule (with `wday` null); no intervals is a day off."""

    type: Literal["wday", "date"]
    wday: DayOfWeek | None
    date: str | None
    intervals: list[CalendlyInterval]


class CalendlyAvailabilitySchedule(Reply, frozen=True, kw_only=True):
    """A user's availability schedule: the provider's working hours."""

    uri: str
    default: bool
    name: str
    user: str
    timezone: str
    rules: list[CalendlyAvailabilityRule]


class CalendlyAvailabilityScheduleReply(Reply, frozen=True, kw_only=True):
    """GET /calendly/user_availability_schedules/:uuid."""

    resource: CalendlyAvailabilitySchedule


class CalendlyAvailabilitySchedules(Reply, frozen=True, kw_only=True):
    """GET /calendly/user_availability_schedules (no pagination)."""

    collection: list[CalendlyAvailabilitySchedule]


class CalendlyEventRef(Reply, frozen=True, kw_only=True):
    """The scheduled event a busy time belongs to."""

    uri: str


class CalendlyBusyTime(Reply, frozen=True, kw_only=True):
    """A busy interval with its buffers; `event` only on a link event's own time."""

    type: Literal["calendly", "external"]
    start_time: str
    end_time: str
    buffered_start_time: str
    buffered_end_time: str
    event: CalendlyEventRef | UnsetType = UNSET


class CalendlyBusyTimes(Reply, frozen=True, kw_only=True):
    """GET /calendly/user_busy_times (no pagination)."""

    collection: list[CalendlyBusyTime]


class CalendlyEventLocation(Reply, frozen=True, kw_only=True):
    """Where a scheduled event takes place (the domain keeps no location: `custom` with null text)."""

    type: str
    location: str | None


class CalendlyInviteesCounter(Reply, frozen=True, kw_only=True):
    """How many invitees an event has, has active, and may have."""

    total: int
    active: int
    limit: int


class CalendlyEventMembership(Reply, frozen=True, kw_only=True):
    """A host of a scheduled event."""

    user: str
    user_email: str
    user_name: str


class CalendlyCancellation(Reply, frozen=True, kw_only=True):
    """Who canceled an event or invitee, and why."""

    canceled_by: str
    reason: str
    canceler_type: Literal["host", "invitee"]
    created_at: str


class CalendlyScheduledEvent(Reply, frozen=True, kw_only=True):
    """A booked link event as a Calendly scheduled event."""

    uri: str
    name: str
    meeting_notes_plain: str | None
    meeting_notes_html: str | None
    status: Literal["active", "canceled"]
    start_time: str
    end_time: str
    event_type: str
    location: CalendlyEventLocation
    invitees_counter: CalendlyInviteesCounter
    created_at: str
    updated_at: str
    event_memberships: list[CalendlyEventMembership]
    event_guests: list[dict[str, Any]]  # the domain has no guests
    calendar_event: dict[str, Any] | None  # no calendar sync of our own events
    cancellation: CalendlyCancellation | UnsetType = UNSET


class CalendlyScheduledEventReply(Reply, frozen=True, kw_only=True):
    """GET /calendly/scheduled_events/:uuid."""

    resource: CalendlyScheduledEvent


class CalendlyScheduledEvents(Reply, frozen=True, kw_only=True):
    """GET /calendly/scheduled_events."""

    collection: list[CalendlyScheduledEvent]
    pagination: CalendlyPagination


class CalendlyTracking(Reply, frozen=True, kw_only=True):
    """UTM and Salesforce tracking of an invitee (null: the domain tracks none)."""

    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_content: str | None
    utm_term: str | None
    salesforce_uuid: str | None


class CalendlyQuestionAndAnswer(Reply, frozen=True, kw_only=True):
    """An answer the invitee gave when booking."""

    question: str
    answer: str
    position: int


class CalendlyInvitee(Reply, frozen=True, kw_only=True):
    """The scheduler of a link event as a Calendly invitee."""

    uri: str
    email: str
    first_name: str | None
    last_name: str | None
    name: str
    status: Literal["active", "canceled"]
    questions_and_answers: list[CalendlyQuestionAndAnswer]
    timezone: str | None
    event: str
    created_at: str
    updated_at: str
    tracking: CalendlyTracking
    text_reminder_number: str | None
    rescheduled: bool
    old_invitee: str | None
    new_invitee: str | None
    cancel_url: str
    reschedule_url: str
    routing_form_submission: str | None
    cancellation: CalendlyCancellation | UnsetType = UNSET
    payment: dict[str, Any] | None
    no_show: dict[str, Any] | None
    reconfirmation: dict[str, Any] | None
    scheduling_method: str | None
    invitee_scheduled_by: str | None


class CalendlyInviteeReply(Reply, frozen=True, kw_only=True):
    """GET /calendly/scheduled_events/:uuid/invitees/:uuid and POST /calendly/invitees."""

    resource: CalendlyInvitee


class CalendlyInvitees(Reply, frozen=True, kw_only=True):
    """GET /calendly/scheduled_events/:uuid/invitees."""

    collection: list[CalendlyInvitee]
    pagination: CalendlyPagination


class CalendlyCancellationReply(Reply, frozen=True, kw_only=True):
    """POST /calendly/scheduled_events/:uuid/cancellation."""

    resource: CalendlyCancellation


class CalendlySchedulingLink(Reply, frozen=True, kw_only=True):
    """A single-use booking link."""

    booking_url: str
    owner: str
    owner_type: Literal["EventType"]


class CalendlySchedulingLinkReply(Reply, frozen=True, kw_only=True):
    """POST /calendly/scheduling_links."""

    resource: CalendlySchedulingLink


class CalendlyWebhookSubscription(Reply, frozen=True, kw_only=True):
    """A webhook as a Calendly webhook subscription."""

    uri: str
    callback_url: str
    created_at: str
    updated_at: str
    retry_started_at: str | None
    state: Literal["active", "disabled"]
    events: list[Literal["invitee.created", "invitee.canceled"]]
    scope: Literal["user", "organization"]
    organization: str
    user: str | None
    group: str | None
    creator: str | None


class CalendlyWebhookSubscriptionReply(Reply, frozen=True, kw_only=True):
    """POST and GET /calendly/webhook_subscriptions(/:uuid)."""

    resource: CalendlyWebhookSubscription


class CalendlyWebhookSubscriptions(Reply, frozen=True, kw_only=True):
    """GET /calendly/webhook_subscriptions."""

    collection: list[CalendlyWebhookSubscription]
    pagination: CalendlyPagination


class CalendlyNoContent(Reply, frozen=True, kw_only=True):
    """DELETE /calendly/webhook_subscriptions/:uuid answers 204 with no body (null over NATS)."""


# Every reply type above, for the OpenAPI/AsyncAPI generators and the shape tests.
REPLY_TYPES: tuple[type[Reply], ...] = tuple(
    value for value in list(globals().values())
    if isinstance(value, type) and issubclass(value, Reply) and value is not Reply
)
